"""Reports for privacy reviewers, generated from the store's registry and the model.

``main_parameters(model, store)`` (EU DSA Art. 27), ``transparency(store, user)`` (GDPR
Art. 15) and ``records_of_processing(store)`` (GDPR Art. 30); each returns a pydantic model
with ``model_dump_json()``, ``to_markdown()`` and ``to_html()``.
"""

from persona.reports._reports import (
    MainParametersReport,
    RecordsOfProcessingReport,
    Report,
    TransparencyReport,
    main_parameters,
    records_of_processing,
    transparency,
)

__all__ = [
    "MainParametersReport",
    "RecordsOfProcessingReport",
    "Report",
    "TransparencyReport",
    "main_parameters",
    "records_of_processing",
    "transparency",
]
