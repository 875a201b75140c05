"""Recommenders on implicit's kernels with one shared interface.

``ALS``, ``BPR``, ``ItemKNN`` and ``ContentKNN`` (neighbours from public item text)
learn from :class:`persona.data.Interactions`;
``Popularity`` is the non-profiling option. All share :class:`Recommender`'s API.
"""

import os
from pathlib import Path

from persona.errors import ValidationError
from persona.models._attribution import Attribution
from persona.models._base import (
    BusinessRule,
    History,
    NoExactDecompositionError,
    PrivateTrainingUnavailableError,
    Recommender,
)
from persona.models._bpr import BPR, BPRConfig
from persona.models._content import ContentKNN, ContentKNNConfig, text_similarity
from persona.models._factor import ALS, ALSConfig
from persona.models._neighbours import ItemKNN, ItemKNNConfig, Popularity, PopularityConfig
from persona.models._persistence import FORMAT_VERSION, load_model
from persona.models._private import NoItemSelected
from persona.models._private import universe as private_item_universe
from persona.models._registry import MODELS, model_class
from persona.models._tables import RecommendationArrays


def load(path: str, *, store_id: str | None = None) -> Recommender:
    """Load any persona model saved with ``model.save(path)`` (with ``store_id``: only one
    saved for that store)."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path must be a folder's path (a str), not a {type(path).__name__}")

    return load_model(Recommender, Path(path), store_id=store_id)


__all__ = [
    "ALS",
    "BPR",
    "FORMAT_VERSION",
    "MODELS",
    "ALSConfig",
    "Attribution",
    "BPRConfig",
    "BusinessRule",
    "ContentKNN",
    "ContentKNNConfig",
    "History",
    "ItemKNN",
    "ItemKNNConfig",
    "NoExactDecompositionError",
    "NoItemSelected",
    "Popularity",
    "PopularityConfig",
    "PrivateTrainingUnavailableError",
    "RecommendationArrays",
    "Recommender",
    "load",
    "model_class",
    "private_item_universe",
    "text_similarity",
]
