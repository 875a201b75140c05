"""The real Online Retail data (UCI, CC BY 4.0) ingested whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import persona
from store_helpers import Clock

pd = pytest.importorskip("pandas")


@pytest.mark.slow
def test_online_retail_ingests_whole_and_guest_checkouts_are_counted(shared_data: Path) -> None:
    raw = pd.read_csv(
        shared_data / "online-retail" / "online_retail.csv.gz",
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Float64"},
    )
    assert len(raw) == 541_909
    df = pd.DataFrame(
        {
            "id": "line-" + pd.Series(np.arange(len(raw))).astype(str),
            "user": raw["CustomerID"].astype("Int64").astype("string").astype(object),
            "item": raw["StockCode"],
            "feature": "purchases",
            "value": raw["Quantity"].astype(float),
            "at": pd.to_datetime(raw["InvoiceDate"]).dt.tz_localize("Europe/London"),
        }
    )
    guests = int(raw["CustomerID"].isna().sum())
    # cancellations have negative quantities: values are confidences (>= 0), so they are
    # refused as 'value' (issue 17, point 7); a guest's row is refused for its 'user' first
    returns = int((raw["CustomerID"].notna() & (raw["Quantity"] < 0)).sum())
    kept = raw[raw["CustomerID"].notna() & (raw["Quantity"] >= 0)]
    clock = Clock(datetime(2011, 12, 10, tzinfo=UTC))
    store = persona.Store(":memory:", clock=clock)
    store.define_purpose("personalization", description="Recommend products from what you buy")
    store.define_feature(
        "purchases", purposes=["personalization"], category="purchase history", retention_days=730
    )
    with pytest.raises(persona.ValidationError, match="field 'value'"):
        store.ingest(df)
    assert store.stats()["events"] == 0
    report = store.ingest(df, on_invalid="skip")
    assert guests == 135_080 and returns == 8_905
    assert report.rejected == guests + returns
    assert report.rejected_by_field == {"user": guests, "value": returns}
    assert report.inserted == len(raw) - guests - returns == len(kept)
    customers = kept["CustomerID"].unique()
    assert store.stats()["people"] == len(customers)
    assert store.ingest(df, on_invalid="skip").inserted == 0  # re-sent: nothing changes
    for c in customers[::2]:
        store.grant(str(int(c)), "personalization", source="checkout")
    cols = store.scope("personalization").events()
    granted = {str(int(c)) for c in customers[::2]}
    assert set(cols.users) == granted
    expected = int(kept["CustomerID"].astype(int).astype(str).isin(granted).sum())
    assert len(cols) == expected
