"""Every persona model passes the public conformance suite."""

from __future__ import annotations

from persona.models import ALS, BPR, ContentKNN, ItemKNN, Popularity
from persona.privacy import DP
from persona.testing import ModelConformance

# generous settings on the small block fixture (60 people, 24 items): the suite checks the
# contract of a private model, not its utility (tests/test_privacy_models.py audits it)
_DP = DP(epsilon=50.0, delta=1e-6, max_events_per_person=8)


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


class TestPrivateALS(ModelConformance):
    fold_in_overlap = 0.5  # the refit draws fresh noise
    pooled_release_is_fixed = True

    def make_model(self) -> ALS:
        # few factors and iterations: less noise per released statistic on 60 people
        return ALS(factors=4, iterations=3, regularization=0.05, random_state=0, privacy=_DP)


class TestPrivateItemKNN(ModelConformance):
    fold_in_overlap = 0.5
    pooled_release_is_fixed = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(measure="cosine", neighbours=10, privacy=_DP)


class TestPrivatePopularity(ModelConformance):
    exact_decomposition = False
    # a refit ranks by fresh noise, so it is no reference; fold-in must rank exactly by the
    # counts released at fit, and change nobody else's list
    fold_in_overlap = None
    pooled_release_is_fixed = True

    def make_model(self) -> Popularity:
        return Popularity(privacy=_DP)


# public text that agrees with the block fixture's groups (24 items, 8 per group)
_TEXT = {f"i{j}": f"{('kitchen', 'garden', 'office')[j // 8]} product {j}" for j in range(24)}


class TestContentKNNText(ModelConformance):
    forget_equals_refit = True

    def make_model(self) -> ContentKNN:
        return ContentKNN(item_text=_TEXT, neighbours=10, collaborative=0.0)


class TestContentKNNBlend(ModelConformance):
    forget_equals_refit = True

    def make_model(self) -> ContentKNN:
        return ContentKNN(item_text=_TEXT, neighbours=10, collaborative=1.0)


class TestPrivateContentKNNText(ModelConformance):
    # nothing pooled is released: a refit gives the same similarities, no noise
    pooled_release_is_fixed = True

    def make_model(self) -> ContentKNN:
        return ContentKNN(item_text=_TEXT, neighbours=10, collaborative=0.0, privacy=_DP)


class TestPrivateContentKNNBlend(ModelConformance):
    fold_in_overlap = 0.5
    pooled_release_is_fixed = True

    def make_model(self) -> ContentKNN:
        return ContentKNN(item_text=_TEXT, neighbours=10, collaborative=1.0, privacy=_DP)


class TestPrivateItemKNNHead(ModelConformance):
    fold_in_overlap = 0.5
    pooled_release_is_fixed = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(measure="cosine", neighbours=10, head=20, privacy=_DP)
