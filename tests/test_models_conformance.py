"""Every persona model passes the public conformance suite."""

from __future__ import annotations

from persona.models import ALS, BPR, ItemKNN, Popularity
from persona.testing import ModelConformance


class TestALS(ModelConformance):
    def make_model(self) -> ALS:
        return ALS(factors=8, iterations=10, regularization=0.05, random_state=0)


class TestBPR(ModelConformance):
    exact_decomposition = False
    fold_in_overlap = 0.5
    fold_in_is_serving_solve = False

    def make_model(self) -> BPR:
        return BPR(factors=8, iterations=60, learning_rate=0.05, random_state=0, num_threads=1)


class TestItemKNNCosine(ModelConformance):
    forget_equals_refit = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(measure="cosine", neighbours=10)


class TestItemKNNBM25(ModelConformance):
    forget_equals_refit = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(measure="bm25", neighbours=10)


class TestPopularity(ModelConformance):
    exact_decomposition = False
    forget_equals_refit = True

    def make_model(self) -> Popularity:
        return Popularity()
