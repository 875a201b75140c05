"""Data sets for the recommender benchmarks (read from ../shared/data, never shipped)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from persona.data import Interactions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PERSONA_SHARED_DATA", ROOT.parent / "shared" / "data"))


def movielens() -> Interactions:
    """MovieLens latest-small: every rating is one implicit event (confidence 1)."""
    df = pd.read_csv(SHARED / "ml-latest-small" / "ratings.csv")
    df["at"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
    return Interactions.from_pandas(df, user="userId", item="movieId", at="at")


def online_retail() -> Interactions:
    """UCI Online Retail, cleaned as in ../shared/data/README.md.

    Confidence: number of invoice lines of the product (duplicates summed), log-scaled.
    """
    df = pd.read_csv(
        SHARED / "online-retail" / "online_retail.csv.gz",
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
    )
    df = df[df["CustomerID"].notna() & (df["Quantity"] > 0)]
    df = df[~df["InvoiceNo"].str.startswith("C")]
    return Interactions.from_pandas(
        df, user="CustomerID", item="StockCode", at="InvoiceDate", tz="Europe/London",
        scaling="log",
    )


def online_retail_labels() -> dict[str, str]:
    """Online Retail's product titles (``Description``), first seen per ``StockCode``."""
    df = pd.read_csv(SHARED / "online-retail" / "online_retail.csv.gz",
                     dtype={"StockCode": str}, usecols=["StockCode", "Description"])
    first = df.dropna(subset=["Description"]).groupby("StockCode")["Description"].first()
    return {str(k): str(v) for k, v in first.items()}


def synthetic(n_users: int = 100_000, n_items: int = 20_000, n_events: int = 5_000_000,
              seed: int = 0) -> Interactions:
    """Long-tailed random events (item popularity ∝ rank^-0.8), duplicates summed."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    p /= p.sum()
    u = rng.integers(0, n_users, n_events)
    i = rng.choice(n_items, n_events, p=p)
    m = sp.csr_matrix((np.ones(n_events), (u, i)), shape=(n_users, n_items))
    m.sum_duplicates()
    return Interactions.from_csr(
        m, [f"u{k}" for k in range(n_users)], [f"i{k}" for k in range(n_items)]
    )
