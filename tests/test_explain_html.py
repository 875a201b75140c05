"""The notebook display of an explanation: its "When" column shows the time of the data
behind each reason, and is left out when no reason has one (issue 22: it was shown empty)."""

from __future__ import annotations

import re

import pytest

from persona.data import Interactions
from persona.explain import Explanation
from persona.models import ALS, ItemKNN
from store_helpers import Clock, shop, two_groups


def _header(html: str) -> list[str]:
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", html)
    assert head is not None
    return re.findall(r"<th>(.*?)</th>", head.group(1))


def _rows(html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", html)
    assert body is not None
    return [re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1))]


@pytest.fixture(scope="module")
def fitted() -> tuple[object, ALS, ItemKNN]:
    store = shop(clock=Clock())
    events = two_groups(store)
    store.ingest(events)
    X = Interactions.from_view(store.scope("personalization"))
    als = ALS(factors=4, iterations=5, random_state=0).fit(X)
    knn = ItemKNN(neighbours=5).fit(X)
    return store, als, knn


@pytest.mark.parametrize("name", ["als", "knn"])
def test_served_form_without_times_has_no_empty_when_column(fitted, name: str) -> None:
    model = fitted[1] if name == "als" else fitted[2]
    for detail in ("summary", "full"):
        e = model.recommend("p0", n=1, detail=detail)[0].explanation
        assert e.reasons and all(r.at is None for r in e.reasons)  # the model keeps no times
        html = e._repr_html_()
        assert "When" not in _header(html)
        rows = _rows(html)
        width = len(_header(html))
        assert width == 4
        for cells in rows:  # every row as wide as the header (the "more" row spans it)
            if cells[0].startswith("…"):
                assert f"colspan='{width}'" in html
            else:
                assert len(cells) == width


@pytest.mark.parametrize("name", ["als", "knn"])
def test_store_backed_explanation_shows_the_date_of_each_reasons_data(fitted, name) -> None:
    store, model = fitted[0], fitted[1] if name == "als" else fitted[2]
    item = model.recommend("p0", n=1)[0].item
    e = model.explain("p0", item, store=store)
    assert e.reasons and all(r.at is not None for r in e.reasons)
    html = e._repr_html_()
    header = _header(html)
    assert header[-1] == "When"
    rows = [cells for cells in _rows(html) if not cells[0].startswith("…")]
    assert len(rows) == min(len(e.reasons), 20)
    for r, cells in zip(e.reasons, rows, strict=False):
        assert len(cells) == len(header)
        assert cells[-1] == f"{r.at.day} October 2026"


def test_mixed_times_keep_the_column_and_leave_unknown_cells_blank(fitted) -> None:
    store, model = fitted[0], fitted[1]
    item = model.recommend("p0", n=1)[0].item
    e = model.explain("p0", item, store=store)
    assert len(e.reasons) >= 2
    first = e.reasons[0].model_copy(update={"at": None})
    mixed = e.model_copy(update={"reasons": [first, *e.reasons[1:]]})
    assert isinstance(mixed, Explanation)
    html = mixed._repr_html_()
    assert _header(html)[-1] == "When"
    rows = _rows(html)
    assert rows[0][-1] == ""
    assert rows[1][-1].endswith("October 2026")
