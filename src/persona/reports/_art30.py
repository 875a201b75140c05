"""The GDPR Art. 30 record of processing activities: who is responsible, purposes, data
subjects and data categories from the store's registry, recipients, transfers, retention
per category, security measures, the privacy ledger and the state of the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from persona.reports._org import (
    SAFEGUARDS,
    Contact,
    ContactLike,
    Recipient,
    RecipientLike,
    Text,
    Transfer,
    TransferLike,
    check_recipients,
    checked,
)
from persona.reports._render import Report, Table, days, human_number, human_numbers, now
from persona.reports._wording import describe_mechanism

if TYPE_CHECKING:
    from persona.privacy import BudgetLedger, PrivacyBudgetPolicy
    from persona.store import Store

__all__ = ["RecordsOfProcessingReport", "records_of_processing"]

_NO_BUDGET = ("none set: the first private fit sets a lifetime total equal to its own "
              "(ε, δ)")


class ProcessingPurpose(BaseModel):
    name: str
    description: str
    legal_basis: str
    categories: list[str]
    features: list[str]
    recipients: str
    tcf_purposes: list[int]
    consent_mode: list[str]
    privacy_budget: tuple[float, float] | None = None
    """(ε, δ) that private computations on this purpose may spend (in total, or per period:
    see :attr:`privacy_budget_policy`), if set."""
    privacy_budget_policy: dict[str, Any] | None = None
    """The budget policy (``epsilon``, ``delta``, ``period_days``: ``None`` for a lifetime
    total, ``set_at``), if set."""
    privacy_budget_statement: str | None = None
    """The policy in plain words, stating the weaker guarantee of a per-period budget."""


class DataCategory(BaseModel):
    feature: str
    category: str
    purposes: list[str]
    retention: str
    description: str


class SubjectCategory(BaseModel):
    """A category of data subjects: from the registry (``purpose`` set) or as the
    organisation named it."""

    description: str
    purpose: str | None = None


class SecurityMeasure(BaseModel):
    measure: str
    by: str
    """``"persona"`` (implemented and, where it can be, checked when the report was made)
    or ``"the controller"`` (as stated by the organisation)."""


class RecordsOfProcessingReport(Report):
    """The record of processing activities (GDPR Art. 30(1))."""

    controller: Contact | None = None
    dpo: Contact | None = None
    representative: Contact | None = None
    missing: list[str] = Field(default_factory=list)
    """Details the record needs before it can be filed (``"controller"``, ``"dpo"``)."""
    purposes: list[ProcessingPurpose]
    data_subjects: list[SubjectCategory] = Field(default_factory=list)
    categories: list[DataCategory]
    recipients: list[Recipient] = Field(default_factory=list)
    transfers: list[Transfer] = Field(default_factory=list)
    security_measures: list[SecurityMeasure] = Field(default_factory=list)
    audit_entries: int
    audit_intact: bool
    privacy_charges: list[dict[str, Any]] = Field(default_factory=list)
    """Differential-privacy charges of pooled computations (from a budget ledger)."""

    @property
    def fileable(self) -> bool:
        """Whether the record names everything Art. 30(1)(a) asks for."""
        return not self.missing

    def _warnings(self) -> list[str]:
        if not self.missing:
            return []
        names = {"controller": "the controller's name and contact",
                 "dpo": "the data-protection officer's name and contact"}
        return ["Not fileable yet: " + " and ".join(names[m] for m in self.missing)
                + " are MISSING (GDPR Art. 30(1)(a)). Pass them to records_of_processing("
                "controller=..., dpo=...) or in the organisation file of 'persona report "
                "--org'."]

    def _tables(self) -> list[Table]:
        def contact(c: Contact | None) -> list[str]:
            return ["MISSING", "MISSING"] if c is None else [c.name, c.contact]

        who = [["controller", *contact(self.controller)],
               ["data-protection officer", *contact(self.dpo)]]
        if self.representative is not None:
            who.append(["representative in the EU", *contact(self.representative)])
        return [
            Table(title="Who is responsible", columns=["role", "name", "contact"], rows=who),
            Table(title="Purposes", columns=["purpose", "description", "legal basis",
                                             "data categories", "recipients",
                                             "privacy budget"],
                  rows=[[p.name, p.description, p.legal_basis, ", ".join(p.categories),
                         p.recipients, p.privacy_budget_statement or _NO_BUDGET]
                        for p in self.purposes]),
            Table(title="Categories of data subjects", columns=["data subjects"],
                  rows=[[s.description] for s in self.data_subjects]),
            Table(title="Categories of personal data and when they are erased",
                  columns=["category", "feature", "purposes", "kept for"],
                  rows=[[c.category, c.feature, ", ".join(c.purposes), c.retention]
                        for c in self.categories]),
            Table(title="Recipients", columns=["recipient", "role", "purposes", "country"],
                  rows=[[r.name, r.role, ", ".join(r.purposes) or "all", r.country or ""]
                        for r in self.recipients],
                  empty="No recipient outside the controller was named."),
            Table(title="Transfers to third countries",
                  columns=["recipient", "country", "safeguard", "copy of the safeguards"],
                  rows=[[t.recipient, t.country, SAFEGUARDS[t.safeguard], t.documents or ""]
                        for t in self.transfers],
                  empty="No transfer to a third country was declared."),
            Table(title="Technical and organisational security measures",
                  columns=["measure", "by"],
                  rows=[[m.measure, m.by] for m in self.security_measures]),
            Table(title="Differential-privacy charges",
                  columns=["purpose", "what was protected", "ε", "δ", "at", "status"],
                  rows=[[c.get("purpose"), describe_mechanism(c.get("mechanism")),
                         human_number(c.get("epsilon")), human_number(c.get("delta")),
                         c.get("created_at", c.get("at")), c.get("status", "settled")]
                        for c in self.privacy_charges],
                  note="A reserved line holds budget for a fit that has not settled yet (in "
                       "progress, or stopped before settling); it counts at the reserved "
                       "amount."
                  if any(c.get("status") == "reserved" for c in self.privacy_charges)
                  else None),
            Table(title="Audit log", columns=["entries", "hash chain intact"],
                  rows=[[self.audit_entries, "yes" if self.audit_intact else "NO"]]),
        ]


def _own_measures(store: Store, intact: bool, private: bool) -> list[SecurityMeasure]:
    out = [
        "People are pseudonymised in the audit log: entries carry a keyed hash "
        "(HMAC-SHA-256) of their id, never the id.",
        "An append-only, hash-chained audit log records consent changes, reads, exports, "
        "erasures and privacy charges; checked when this record was made: "
        + ("intact." if intact else "BROKEN, investigate."),
        "On erasure, a person's events, consent history, feedback and id are deleted and "
        "scrubbed from the file's free pages and write-ahead log; later data for them is "
        "refused until they consent again.",
        "Data is read for a purpose only for people whose consent is active, only the kinds "
        "of data allowed for it, and only within each kind's retention period.",
    ]
    if private:
        out.append("Pooled model parts are released with differential privacy (noise from "
                   "the operating system's secure random generator), charged to a budget "
                   "per purpose that refuses a computation past it.")
    return [SecurityMeasure(measure=m, by="persona") for m in out]


def records_of_processing(
    store: Store, ledger: BudgetLedger | None = None, *,
    controller: ContactLike | None = None, dpo: ContactLike | None = None,
    representative: ContactLike | None = None, recipients: Iterable[RecipientLike] = (),
    transfers: Iterable[TransferLike] = (), security_measures: Iterable[str] = (),
    data_subjects: Iterable[str] = (),
) -> RecordsOfProcessingReport:
    """The record of processing activities of ``store`` (GDPR Art. 30(1)).

    Purposes, categories of data subjects and of personal data, and retention per category
    come from the store's registry; ``controller``, ``dpo`` and ``representative`` are
    ``{"name": ..., "contact": ...}`` (:class:`~persona.reports.Contact`); ``recipients``
    a list of :class:`~persona.reports.Recipient`, ``transfers`` a list of
    :class:`~persona.reports.Transfer` (to a third country, with its safeguard),
    ``security_measures`` and ``data_subjects`` lists of sentences; the measures persona
    implements itself are always listed. Without a controller or a DPO the record says that
    it is not fileable, and names what is missing. Bad details raise
    :class:`~persona.ValidationError` naming the field and the fix.

    Differential-privacy charges come from ``ledger`` (a
    :class:`persona.privacy.BudgetLedger`) when given, else from the store's own persisted
    ledger (``store.privacy_charges()``, with reservations not settled yet marked
    ``reserved``); each purpose states its privacy budget policy in plain words.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("ads", description="Show our ads on other sites", sharing=True)
    >>> store.define_feature("location", purposes=["ads"], category="approximate location",
    ...                      retention_days=None)
    >>> r = records_of_processing(store)
    >>> r.purposes[0].recipients, r.categories[0].retention
    ('third parties (data is sold or shared)', 'until erased')
    >>> r.fileable, r.missing
    (False, ['controller', 'dpo'])
    >>> r = records_of_processing(store, controller={"name": "Shop Ltd", "contact": "a@b.eu"},
    ...                           dpo={"name": "A. Reviewer", "contact": "dpo@b.eu"})
    >>> r.fileable
    True
    """
    controller = checked(Contact | None, controller, "controller")
    dpo = checked(Contact | None, dpo, "dpo")
    representative = checked(Contact | None, representative, "representative")
    named = checked(tuple[Recipient, ...], recipients, "recipients")
    moves = checked(tuple[Transfer, ...], transfers, "transfers")
    measures = checked(tuple[Text, ...], security_measures, "security_measures")
    subjects = checked(tuple[Text, ...], data_subjects, "data_subjects")
    purposes = store.purposes
    check_recipients(named, purposes)
    features = store.features
    rows = []
    for name, spec in sorted(purposes.items()):
        mine = sorted(f for f, fs in features.items() if name in fs.purposes)
        receiving = [r for r in named if not r.purposes or name in r.purposes]
        if receiving:
            recipients_text = "; ".join(
                f"{r.name} ({r.role}{', ' + r.country if r.country else ''})"
                for r in receiving)
        elif spec.sharing:
            recipients_text = "third parties (data is sold or shared)"
        else:
            recipients_text = "no one outside the controller"
        policy = _policy(store, name)
        rows.append(ProcessingPurpose(
            name=name, description=spec.description,
            legal_basis="consent (GDPR Art. 6(1)(a)); reads see only people whose consent "
                        "is active",
            categories=sorted({features[f].category for f in mine}), features=mine,
            recipients=recipients_text,
            tcf_purposes=list(spec.tcf_purposes), consent_mode=list(spec.consent_mode),
            privacy_budget=_budget(store, name),
            privacy_budget_policy=None if policy is None else policy.model_dump(mode="json"),
            privacy_budget_statement=None if policy is None
            else human_numbers(policy.describe()),
        ))
    categories = [DataCategory(feature=name, category=spec.category,
                               purposes=list(spec.purposes), retention=days(spec.retention_days),
                               description=spec.description)
                  for name, spec in sorted(features.items())]
    subject_rows = [SubjectCategory(description=s) for s in subjects] + [
        SubjectCategory(purpose=name, description=(
            f"People asked to consent to '{name}' ({spec.description}): those who consented, "
            "whose data is processed for it, and those who declined or withdrew, whose "
            "choice is kept as a record"))
        for name, spec in sorted(purposes.items())]
    charges = _charges(store, ledger)
    intact = store.audit.verify()
    private = bool(charges) or any(p.privacy_budget is not None for p in rows)
    return RecordsOfProcessingReport(
        title="Records of processing activities", generated_at=now(),
        store_id=store.store_id, controller=controller, dpo=dpo,
        representative=representative,
        missing=[k for k, v in (("controller", controller), ("dpo", dpo)) if v is None],
        purposes=rows, data_subjects=subject_rows, categories=categories,
        recipients=list(named), transfers=list(moves),
        security_measures=[*_own_measures(store, intact, private),
                           *(SecurityMeasure(measure=m, by="the controller") for m in measures)],
        audit_entries=len(store.audit), audit_intact=intact, privacy_charges=charges,
    )


def _budget(store: Store, purpose: str) -> tuple[float, float] | None:
    read = getattr(store, "privacy_budget", None)
    return None if read is None else read(purpose)


def _policy(store: Store, purpose: str) -> PrivacyBudgetPolicy | None:
    read = getattr(store, "privacy_budget_policy", None)
    return None if read is None else read(purpose)


def _charges(store: Store, ledger: BudgetLedger | None) -> list[dict[str, Any]]:
    if ledger is not None:
        return [_flat(c) for c in ledger.export()]
    read = getattr(store, "privacy_charges", None)
    if read is None:
        return []
    return [c.model_dump(mode="json") for c in read()]


def _flat(charge: Any) -> dict[str, Any]:
    """A ledger charge with its ``spent`` fields lifted up (mechanism, epsilon, delta)."""
    out = dict(charge)
    spent = out.get("spent") or out.get("charge")
    if isinstance(spent, dict):
        for k in ("mechanism", "epsilon", "delta"):
            out.setdefault(k, spent.get(k))
    return out
