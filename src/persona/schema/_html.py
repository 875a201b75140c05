"""Notebook display of an explanation: its text, a table of reasons, data used and not used.

Every value (labels, ids, feature names come from outside) is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from persona.schema._text import date_text, not_used_sentence, templates

if TYPE_CHECKING:
    from persona.schema._explanation import Explanation

__all__ = ["render_html"]


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def _share(share: float | None, contribution: float | None, against: str) -> str:
    """A positive reason's share of the evidence for; a negative one's of the evidence
    against, said so (never a share of the score, which cancelling parts would inflate)."""
    if share is None:
        return ""
    pct = f"{100 * share:.0f}%"
    return f"{pct} {against}" if (contribution or 0.0) < 0 else pct


def render_html(e: Explanation, max_rows: int = 20) -> str:
    t = templates(e.language)
    h = t["html"]
    kind = h["kinds"].get(e.kind, e.kind)
    out = [
        '<div class="persona-explanation">',
        f"<p><strong>{_e(e.text)}</strong></p>",
        f"<p><small>{_e(h['kind'])}: {_e(kind)} ({_e(e.model)}); "
        f"{_e(e.label)} [{_e(e.item)}], {_e(_num(e.score, 6))}</small></p>",
    ]
    if e.evidence is not None:
        out.append("<p><small>" + _e(str(h["evidence"]).format(
            support=_num(e.evidence.support), against=_num(e.evidence.against))) + "</small></p>")
    if e.reasons:
        part = h["part"] if e.kind == "decomposition" else h["reasons"]
        rows = e.reasons[:max_rows]
        # the time of each reason's data comes from the store (model.explain(store=...));
        # served lists carry none, since models keep no event times: then no "When" column
        dated = any(r.at is not None for r in rows)
        when = f"<th>{_e(h['when'])}</th>" if dated else ""
        out.append(
            f"<table><caption>{_e(h['reasons'])}</caption><thead><tr><th>{_e(h['item'])}</th>"
            f"<th>{_e(part)}</th><th>{_e(h['share'])}</th><th>{_e(h['data'])}</th>"
            f"{when}</tr></thead><tbody>"
        )
        for r in rows:
            value = r.contribution if r.contribution is not None else r.similarity
            share = _share(r.share, r.contribution, str(h["against"]))
            at = f"<td>{_e(date_text(r.at, t))}</td>" if dated else ""
            out.append(
                f"<tr><td>{_e(r.label)} <small>[{_e(r.item)}]</small></td>"
                f"<td>{_e(_num(value))}</td><td>{_e(share)}</td><td>{_e(r.feature)}</td>"
                f"{at}</tr>"
            )
        more = max(len(e.reasons) - max_rows, 0)
        if more or (e.rest is not None and e.rest.count):
            count = more + (0 if e.rest is None else e.rest.count)
            part = None if e.rest is None else e.rest.contribution
            if part is not None and not more:
                line = str(h["more"]).format(count=count, part=_num(part))
            else:
                line = str(h["more_plain"]).format(count=count)
            out.append(f"<tr><td colspan='{5 if dated else 4}'>… {_e(line)}</td></tr>")
        out.append("</tbody></table>")
    if e.data_used:
        out.append(f"<p>{_e(h['used'])}:</p><ul>")
        for d in e.data_used:
            basis = ""
            if d.consent is not None:
                basis = (f"; {_e(h['basis'])}: {_e(d.consent.action)} {_e(d.consent.purpose)}, "
                         f"{_e(date_text(d.consent.at, t))} ({_e(d.consent.source)})")
            out.append(f"<li>{_e(d.category)} <small>[{_e(d.feature)}]</small>{basis}</li>")
        out.append("</ul>")
    if e.data_not_used:
        out.append(f"<p>{_e(h['not_used'])}:</p><ul>")
        for gone in e.data_not_used:
            out.append(f"<li>{_e(not_used_sentence(gone, t))}</li>")
        out.append("</ul>")
    if e.counterfactual is not None:
        out.append(f"<p>{_e(h['what_if'])}: {_e(e.statements['counterfactual'])}</p>")
    if e.privacy is not None:
        out.append(f"<p>{_e(h['privacy'])}: {_e(t['privacy'])}</p>")
    out.append("</div>")
    return "".join(out)
