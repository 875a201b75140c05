"""Scaling study (issue 20): synthetic data with a planted low-rank structure, from 1,000 to
1,000,000 people (the study itself follows in this script)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

N_ITEMS = 2_000
TOPICS = 32
MEDIAN_HISTORY = 30
MAX_HISTORY = 500
POPULARITY_EXPONENT = 0.9


def planted(n_people: int, n_items: int = N_ITEMS, seed: int = 0) -> sp.csr_matrix:
    """A binary person–item matrix with a planted rank-32 structure and long tails.

    ``TOPICS`` = 32 topics (the non-private ALS reference has 32 factors, so it is the
    well-specified model). Item ``i`` (popularity rank ``i + 1``) has popularity
    ``(i + 1) ** -0.9`` and a dominant topic drawn uniformly: loading 0.9 on it plus 0.1
    spread evenly over all topics. Each person's topic weights are Dirichlet(0.1) over the
    32 topics (most people have one to three main topics). A person draws a history length
    from a lognormal with median 30 and σ = 1, rounded, kept in [1, 500], and that many events;
    each event's item is drawn with probability ∝ popularity(item) · Σ_t weight(person, t) ·
    loading(item, t): a topic from the person's weights (times each topic's popularity mass),
    then an item from that topic's popularity-weighted loadings. Repeated items collapse to
    one 1, so histories are shorter than the draws (median about 24 items).

    Vectorised: per-person topic counts from one multinomial, then one draw per topic; about
    11 s and 2.5 GB for 1,000,000 people on this machine.
    """
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -POPULARITY_EXPONENT
    loadings = np.full((n_items, TOPICS), 0.1 / TOPICS)
    loadings[np.arange(n_items), rng.integers(0, TOPICS, n_items)] += 0.9
    item_given_topic = popularity[:, None] * loadings
    topic_mass = item_given_topic.sum(axis=0)
    item_given_topic /= topic_mass
    weights = rng.dirichlet(np.full(TOPICS, 0.1), n_people) * topic_mass
    weights /= weights.sum(axis=1, keepdims=True)
    lengths = np.clip(np.rint(rng.lognormal(np.log(MEDIAN_HISTORY), 1.0, n_people)),
                      1, MAX_HISTORY).astype(np.int64)
    counts = rng.multinomial(lengths, weights)  # people x topics
    people, items = [], []
    for t in range(TOPICS):
        people.append(np.repeat(np.arange(n_people, dtype=np.int32), counts[:, t]))
        items.append(rng.choice(n_items, int(counts[:, t].sum()),
                                p=item_given_topic[:, t]).astype(np.int32))
    rows, cols = np.concatenate(people), np.concatenate(items)
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_people, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X
