"""The GDPR Art. 15 report: what is held about one person, where it came from, who receives
it, the explanations they were shown, a record of what was done, and their rights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from persona.reports._org import (
    Contact,
    ContactLike,
    Recipient,
    RecipientLike,
    check_recipients,
    checked,
)
from persona.reports._render import Report, Table, days, human_time
from persona.reports._wording import describe_action

if TYPE_CHECKING:
    from persona.store import Store

__all__ = ["TransparencyReport", "transparency"]


_CHOICE = {"grant": "gave consent", "withdraw": "withdrew consent",
           "decline": "declined"}


class RecipientLine(BaseModel):
    recipient: str
    purposes: list[str]
    country: str | None = None


class SourceLine(BaseModel):
    data: str
    source: str


class Right(BaseModel):
    right: str
    how: str


class TransparencyReport(Report):
    """One person's data, consents, recipients, sources, rights and the explanations they
    were shown (GDPR Art. 15)."""

    pseudonym: str | None
    held: bool
    consents: list[dict[str, Any]]
    data: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    """Entries of the audit log about the person: ``seq``, ``at``, ``what`` (plain words)
    and ``action`` (the entry's kind, for machines)."""
    recipients: list[RecipientLine] = Field(default_factory=list)
    sources: list[SourceLine] = Field(default_factory=list)
    rights: list[Right] = Field(default_factory=list)
    controller: Contact | None = None
    dpo: Contact | None = None
    supervisory_authority: Contact | None = None
    privacy_ledger: list[dict[str, Any]] = Field(default_factory=list)

    def _intro(self) -> list[str]:
        who = "us" if self.controller is None else \
            f"{self.controller.name} ({self.controller.contact})"
        out = [f"This is what {who} holds about you, where it came from, who receives it and "
               "what you can do about it."]
        if self.dpo is not None:
            out.append(f"Our data-protection officer: {self.dpo.name} ({self.dpo.contact}).")
        return out

    def _tables(self) -> list[Table]:
        return [
            Table(title="Your choices", columns=["purpose", "choice", "when", "where"],
                  rows=[[c["purpose"], _CHOICE.get(c["action"], c["action"]),
                         human_time(c["at"]), c["source"]] for c in self.consents]),
            Table(title="Your data", columns=["kind of data", "events", "first", "last",
                                              "may be used for", "kept for"],
                  rows=[[d["category"], d["events"], human_time(d["first_at"]),
                         human_time(d["last_at"]),
                         ", ".join(d["purposes"]), d["retention"]] for d in self.data],
                  empty="We hold no data about you."),
            Table(title="Where your data came from", columns=["data", "source"],
                  rows=[[s.data, s.source] for s in self.sources]),
            Table(title="Who receives your data", columns=["recipient", "for", "country"],
                  rows=[[r.recipient, ", ".join(r.purposes), r.country or ""]
                        for r in self.recipients]),
            Table(title="Explanations you were shown",
                  columns=["when", "item", "what we said", "unchanged"],
                  rows=[[human_time(x["at"]),
                         x["explanation"].get("label", x["explanation"].get("item")),
                         x["explanation"].get("text"), "yes" if x["verified"] else "NO"]
                        for x in self.explanations],
                  empty="No explanation shown to you has been recorded."),
            Table(title="Your rights", columns=["right", "how"],
                  rows=[[r.right, r.how] for r in self.rights]),
            Table(title="Record of what we did with your data",
                  columns=["entry", "when", "what"],
                  rows=[[a["seq"], human_time(a["at"]), a["what"]] for a in self.audit]),
        ]


def _recipients(store: Store, purposes: set[str], named: tuple[Recipient, ...],
                controller: Contact | None) -> list[RecipientLine]:
    out = []
    for r in named:
        mine = sorted(purposes if not r.purposes else purposes & set(r.purposes))
        if mine:
            out.append(RecipientLine(recipient=f"{r.name} ({r.role})", purposes=mine,
                                     country=r.country))
    covered = {p for r in out for p in r.purposes}
    specs = store.purposes
    for p in sorted(purposes - covered):
        if p in specs and specs[p].sharing:
            out.append(RecipientLine(recipient="third parties (data is sold or shared)",
                                     purposes=[p]))
        else:
            who = "the controller" if controller is None else controller.name
            out.append(RecipientLine(recipient=f"no one outside {who}", purposes=[p]))
    return out


def _sources(export: Mapping[str, Any], data_sources: Mapping[str, str],
             controller: Contact | None) -> list[SourceLine]:
    out = []
    seen: set[str] = set()
    who = "us" if controller is None else controller.name
    for ev in export["events"]:
        if ev["feature"] in seen:
            continue
        seen.add(ev["feature"])
        out.append(SourceLine(data=ev["category"], source=data_sources.get(
            ev["feature"], f"recorded by {who} as you used the service (no outside source "
                           "was declared for this kind of data)")))
    by_purpose: dict[str, list[str]] = {}
    for c in export["consent"]["history"]:
        where = by_purpose.setdefault(c["purpose"], [])
        if c["source"] not in where:
            where.append(c["source"])
    for purpose, where in by_purpose.items():
        out.append(SourceLine(data=f"your choices about '{purpose}'",
                              source="you, via " + ", ".join(where)))
    feedback = list(dict.fromkeys(f["source"] for f in export.get("feedback", [])))
    if feedback:
        out.append(SourceLine(data="your feedback on items",
                              source="you, via " + ", ".join(feedback)))
    return out


def _rights(store: Store, controller: Contact | None, dpo: Contact | None,
            authority: Contact | None) -> list[Right]:
    ask = "Ask us" if controller is None and dpo is None else "Ask us (contacts above)"
    non_profiling = (" You can also choose suggestions not based on profiling without "
                     "withdrawing your consent." if hasattr(store, "prefer_non_profiling")
                     else "")
    complaint = ("the data-protection supervisory authority of the EU country where you "
                 "live or work, or where you think your rights were infringed"
                 if authority is None else f"{authority.name} ({authority.contact}), or the "
                 "supervisory authority of the EU country where you live or work")
    return [
        Right(right="See your data (access, GDPR Art. 15)",
              how=f"This report. {ask} for it again at any time, also as a file you can "
                  "take elsewhere (portability, Art. 20)."),
        Right(right="Correct your data (rectification, Art. 16)",
              how=f"{ask} to correct data that is wrong or incomplete."),
        Right(right="Have your data erased (Art. 17)",
              how=f"{ask}; everything held about you is deleted, and only a record under a "
                  "pseudonym that the erasure happened is kept."),
        Right(right="Withdraw your consent (Art. 7(3))",
              how="At any time, where you gave it or by asking us; what was done before "
                  "stays lawful."),
        Right(right="Object to processing, including profiling for suggestions (Art. 21), "
                    "or have it restricted (Art. 18)",
              how=f"{ask}.{non_profiling}"),
        Right(right="Lodge a complaint with a supervisory authority (Art. 77)",
              how=f"You can complain to {complaint}."),
    ]


def transparency(store: Store, user: str, *, controller: ContactLike | None = None,
                 dpo: ContactLike | None = None,
                 supervisory_authority: ContactLike | None = None,
                 recipients: Iterable[RecipientLike] = (),
                 data_sources: Mapping[str, str] | None = None) -> TransparencyReport:
    """What ``store`` holds about ``user`` and what they were shown (GDPR Art. 15).

    Built from ``store.export(user)`` (itself recorded in the audit log) and
    ``store.shown_explanations(user)``; explanations carry a flag saying whether they
    still match the digest the audit log recorded when they were shown. The report also
    lists where the data came from (the consent and feedback sources the store holds;
    ``data_sources`` maps a feature to the source of that kind of data), who receives it
    (``recipients`` named by the organisation, and third parties of purposes that share
    data), the person's rights including the right to complain to a supervisory authority,
    and every audit entry about them in plain words. ``controller``, ``dpo`` and
    ``supervisory_authority`` are ``{"name": ..., "contact": ...}``
    (:class:`~persona.reports.Contact`); bad details raise
    :class:`~persona.ValidationError` naming the field.

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> _ = store.grant("u1", "personalization", source="signup form")
    >>> report = transparency(store, "u1")
    >>> report.consents[0]["source"]
    'signup form'
    >>> report.audit[0]["what"]
    "You gave your consent (purpose: 'personalization')"
    """
    controller = checked(Contact | None, controller, "controller")
    dpo = checked(Contact | None, dpo, "dpo")
    authority = checked(Contact | None, supervisory_authority, "supervisory_authority")
    named = checked(tuple[Recipient, ...], recipients, "recipients")
    sources = checked(dict[str, str], {} if data_sources is None else data_sources,
                      "data_sources")
    check_recipients(named, store.purposes)
    export = store.export(user)
    features = export["features"]
    by_feature: dict[str, dict[str, Any]] = {}
    for ev in export["events"]:
        d = by_feature.setdefault(ev["feature"], {
            "feature": ev["feature"], "category": ev["category"], "events": 0,
            "first_at": ev["at"], "last_at": ev["at"], "purposes": ev["purposes"],
            "retention": days(features.get(ev["feature"], {}).get("retention_days")),
            "outside_retention": 0,
        })
        d["events"] += 1
        d["first_at"] = min(d["first_at"], ev["at"])
        d["last_at"] = max(d["last_at"], ev["at"])
        d["outside_retention"] += 0 if ev["within_retention"] else 1
    consents = [{k: c[k] for k in ("purpose", "action", "at", "source", "notice_version")}
                for c in export["consent"]["history"]]
    audit = [{"seq": a["seq"], "at": a["at"], "action": a["action"],
              "what": describe_action(a["action"], a.get("detail"))} for a in export["audit"]]
    purposes = {c["purpose"] for c in consents if c["action"] == "grant"}
    purposes |= {p for ev in export["events"] for p in ev["purposes"]
                 if (export["consent"]["current"].get(p) or {}).get("action") == "grant"}
    return TransparencyReport(
        title="Your data and the explanations you were shown",
        generated_at=datetime.fromisoformat(export["exported_at"]),
        store_id=export["store_id"], pseudonym=export["subject"]["pseudonym"],
        held=export["held"], consents=consents, data=list(by_feature.values()),
        explanations=store.shown_explanations(user), audit=audit,
        recipients=_recipients(store, purposes, named, controller),
        sources=_sources(export, sources, controller),
        rights=_rights(store, controller, dpo, authority),
        controller=controller, dpo=dpo, supervisory_authority=authority,
        privacy_ledger=export.get("privacy_ledger", []),
    )
