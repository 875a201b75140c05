"""Reports for privacy reviewers and regulators, generated from the store's registry and
the model, never by hand.

``main_parameters(model, store)`` (EU DSA Art. 27), ``transparency(store, user)`` (GDPR
Art. 15) and ``records_of_processing(store, controller=..., dpo=..., ...)`` (GDPR Art. 30);
each returns a pydantic model with ``model_dump_json()``, ``to_markdown()`` and
``to_html()`` (``document=True`` for a whole printable page). The organisation's own
details (controller, DPO, recipients, transfers, security measures) are validated
(:class:`Organisation`, loadable from JSON or TOML); audit entries are written in plain
words (:data:`AUDIT_PHRASES`).
"""

from persona.reports._art15 import TransparencyReport, transparency
from persona.reports._art27 import MainParametersReport, main_parameters
from persona.reports._art30 import RecordsOfProcessingReport, records_of_processing
from persona.reports._org import SAFEGUARDS, Contact, Organisation, Recipient, Transfer
from persona.reports._render import Report, human_number
from persona.reports._wording import AUDIT_PHRASES, describe_action

__all__ = [
    "AUDIT_PHRASES",
    "SAFEGUARDS",
    "Contact",
    "MainParametersReport",
    "Organisation",
    "Recipient",
    "RecordsOfProcessingReport",
    "Report",
    "Transfer",
    "TransparencyReport",
    "describe_action",
    "human_number",
    "main_parameters",
    "records_of_processing",
    "transparency",
]
