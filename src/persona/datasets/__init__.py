"""Sample data bundled with persona (for the demo, docs and notebooks).

The Online Retail sample is CC BY 4.0: Chen, Sain & Guo (2012), "Data mining for the online
retail industry", Journal of Database Marketing and Customer Strategy Management 19(3),
doi:10.1057/dbm.2012.17. See ``ATTRIBUTION.md`` beside this file.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["ATTRIBUTION", "DemoShop", "load_demo_shop"]

ATTRIBUTION = (
    "Online Retail data: UCI Machine Learning Repository, CC BY 4.0. Chen, Sain & Guo "
    "(2012), 'Data mining for the online retail industry', Journal of Database Marketing "
    "and Customer Strategy Management 19(3), doi:10.1057/dbm.2012.17."
)


@dataclass(frozen=True)
class DemoShop:
    """The bundled shop: purchase events ready for ``Store.ingest``, product titles, and
    the customers in order of first appearance."""

    events: list[dict[str, Any]]
    labels: dict[str, str]
    customers: list[str]
    countries: dict[str, str]


def load_demo_shop() -> DemoShop:
    """Load the bundled sample of the UCI Online Retail shop (600 customers).

    Times are the shop's local time (Europe/London). Each invoice line is one event with
    its own id, so repeated lines are kept.

    >>> shop = load_demo_shop()
    >>> len(shop.customers), len(shop.events)
    (600, 39045)
    >>> shop.labels["85123A"]
    'White Hanging Heart T-Light Holder'
    """
    london = ZoneInfo("Europe/London")
    events: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    countries: dict[str, str] = {}
    customers: dict[str, None] = {}
    path = resources.files("persona.datasets") / "online_retail_sample.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as f:
        for k, row in enumerate(csv.DictReader(f)):
            user = str(int(float(row["CustomerID"])))
            item = row["StockCode"]
            title = row["Description"].strip()
            if title and item not in labels:
                labels[item] = title.title()
            customers.setdefault(user, None)
            countries.setdefault(user, row["Country"])
            at = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=london)
            events.append({
                "id": f"{row['InvoiceNo']}/{item}/{k}",
                "user": user,
                "item": item,
                "feature": "purchases",
                "value": float(row["Quantity"]),
                "at": at,
            })
    return DemoShop(events=events, labels=labels, customers=list(customers), countries=countries)
