"""The consent-scoped feature store."""

from persona._columns import EventColumns
from persona.store._audit import AuditEntry, AuditLog
from persona.store._serving import Served
from persona.store._shown import Pending, ShownRecord
from persona.store._store import Store, StoreChargeStorage
from persona.store._view import ScopedView

__all__ = [
    "AuditEntry",
    "AuditLog",
    "EventColumns",
    "Pending",
    "ScopedView",
    "Served",
    "ShownRecord",
    "Store",
    "StoreChargeStorage",
]
