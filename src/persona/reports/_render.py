"""The shared shape of persona's reports: titled tables rendered to Markdown and to styled,
printable HTML, and numbers written for people (two significant digits)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from html import escape
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["Report", "Table", "human_number", "human_numbers", "human_time"]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def human_number(x: float | None) -> str:
    """``x`` to two significant digits, small numbers as a power of ten.

    >>> human_number(7.199999388211364), human_number(16.0), human_number(424.0)
    ('7.2', '16', '420')
    >>> human_number(1.0000000000000002e-06), human_number(0.05), human_number(0)
    ('1 × 10⁻⁶', '0.05', '0')
    """
    if x is None:
        return ""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if 1e-3 <= abs(x) < 1e6:
        text = f"{float(f'{x:.2g}'):f}".rstrip("0").rstrip(".")
        return text
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


_SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?e[+-]?\d+)(?![\w.])")


def human_numbers(text: str) -> str:
    """Numbers written as ``2e-06`` in ``text`` rewritten for people (``2 × 10⁻⁶``).

    >>> human_numbers("ε = 16, δ = 2e-06 in total")
    'ε = 16, δ = 2 × 10⁻⁶ in total'
    """
    return _SCIENTIFIC.sub(lambda m: human_number(float(m.group(1))), text)


def human_time(value: Any) -> str:
    """An ISO 8601 time as ``1 December 2010, 09:32 UTC`` (other values as they are).

    >>> human_time("2010-12-01T09:32:00+00:00")
    '1 December 2010, 09:32 UTC'
    """
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return "" if value is None else str(value)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t.day} {t:%B %Y, %H:%M} UTC"


def now() -> datetime:
    return datetime.now(UTC)


def days(n: int | None) -> str:
    return "until erased" if n is None else f"{n} days"


class Table(BaseModel):
    """A titled table: the unit every report renders."""

    model_config = ConfigDict(frozen=True)

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str | None = None
    empty: str = "(none)"
    """What is written when there are no rows."""


_CSS = """
.persona-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
 Arial,sans-serif;color:#1b1b1b;line-height:1.45;max-width:62rem;margin:0 auto;
 padding:1.5rem 2rem}
.persona-report h1{font-size:1.55rem;margin:0 0 .3rem}
.persona-report h2{font-size:1.12rem;margin:1.7rem 0 .45rem;padding-bottom:.2rem;
 border-bottom:2px solid #d0d7de}
.persona-report p{margin:.35rem 0}
.persona-report .meta{color:#57606a;font-size:.88rem}
.persona-report .intro{font-size:1rem}
.persona-report .missing{background:#fff4d6;border-left:5px solid #bf6c00;
 padding:.6rem .9rem;margin:.9rem 0}
.persona-report table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.35rem 0}
.persona-report th,.persona-report td{border:1px solid #d0d7de;padding:.38rem .55rem;
 text-align:left;vertical-align:top}
.persona-report th{background:#eef1f4;font-weight:600}
.persona-report tbody tr:nth-child(even) td{background:#f8f9fa}
.persona-report code{font-size:.85em}
@media print{
 .persona-report{max-width:none;padding:0;font-size:10pt}
 .persona-report h2{break-after:avoid}
 .persona-report tr,.persona-report .missing{break-inside:avoid}
 .persona-report th,.persona-report .missing,.persona-report tbody tr td{
  -webkit-print-color-adjust:exact;print-color-adjust:exact}
}
""".strip()


class Report(BaseModel):
    """Shared rendering of the reports: ``to_markdown()`` and ``to_html()``."""

    model_config = ConfigDict(frozen=True)

    title: str
    generated_at: datetime
    store_id: str

    def _tables(self) -> list[Table]:  # pragma: no cover
        raise NotImplementedError

    def _intro(self) -> list[str]:
        return []

    def _warnings(self) -> list[str]:
        """Gaps that keep the report from being complete, shown first and highlighted."""
        return []

    def to_markdown(self) -> str:
        """The report as Markdown."""
        out = [f"# {self.title}", "",
               f"Generated {self.generated_at:%Y-%m-%d %H:%M} UTC from store `{self.store_id}`.",
               ""]
        out += [f"> **{w}**" for w in self._warnings()] + ([""] if self._warnings() else [])
        for p in self._intro():
            out += [p, ""]
        for t in self._tables():
            out += [f"## {t.title}", ""]
            if t.note:
                out += [t.note, ""]
            if not t.rows:
                out += [t.empty, ""]
                continue
            out.append("| " + " | ".join(t.columns) + " |")
            out.append("|" + "---|" * len(t.columns))
            for row in t.rows:
                cells = ["" if c is None else str(c).replace("|", "\\|").replace("\n", " ")
                         for c in row]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_html(self, *, document: bool = False) -> str:
        """The report as HTML, every value escaped, styled for screen and print.

        By default a fragment (``<div class="persona-report">`` with its own scoped
        ``<style>``) for a notebook or a page; ``document=True`` gives a whole page (with
        ``<meta charset="utf-8">``) to save as a file, open in a browser or print to PDF.
        """
        e = escape
        out = ['<div class="persona-report">', f"<style>{_CSS}</style>",
               f"<h1>{e(self.title)}</h1>",
               f'<p class="meta">Generated {e(f"{self.generated_at:%Y-%m-%d %H:%M}")} UTC '
               f"from store <code>{e(self.store_id)}</code>.</p>"]
        out += [f'<div class="missing"><strong>{e(w)}</strong></div>' for w in self._warnings()]
        out += [f'<p class="intro">{e(p)}</p>' for p in self._intro()]
        for t in self._tables():
            out.append(f"<h2>{e(t.title)}</h2>")
            if t.note:
                out.append(f"<p>{e(t.note)}</p>")
            if not t.rows:
                out.append(f"<p>{e(t.empty)}</p>")
                continue
            head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in row)
                + "</tr>" for row in t.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        out.append("</div>")
        fragment = "\n".join(out)
        if not document:
            return fragment
        return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{e(self.title)}</title>\n</head>\n<body>\n{fragment}\n</body>\n</html>\n")

    def _repr_html_(self) -> str:
        return self.to_html()
