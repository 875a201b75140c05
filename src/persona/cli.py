"""The ``persona`` command line.

Every command takes ``--store PATH`` (default: ``$PERSONA_STORE`` or ``persona.db``); a
store whose pseudonym key is held outside the file reads it from ``$PERSONA_PSEUDONYM_KEY``
(hex).
Every mistake a caller can make (a bad file row, an unknown purpose, a missing file, a
missing or malformed flag) prints one line, ``persona: error [code]: ...`` with the
:class:`~persona.PersonaError` code and the fix, and exits 2; no tracebacks. Exit 1 is kept
for a check that ran and found a problem (``persona audit verify`` on a log that fails
verification). Files are read as UTF-8 (a byte order mark is fine). ``--out`` paths must lie
inside the current folder (no ``..``); ``--iterations``, ``--factors`` and ``-n`` are
bounded.

    persona demo                                 the end-to-end demo on the bundled shop
    persona purpose add NAME --description TEXT  define a purpose
    persona feature add NAME --purposes P[,P] --category TEXT --retention-days N|none
    persona consent USER PURPOSE grant|withdraw|decline --source TEXT
    persona consent import FILE [--source TEXT] [--map field=column ...]
    persona ingest FILE [--map field=column ...] [--feature NAME] [--tz ZONE]
                                                 [--at-unit s|ms|us|ns]
                   [--dedupe none|exact]
    persona catalogue import FILE [--item-column C] [--label-column C]
    persona catalogue show [--json]
    persona train --out DIR [--model als|bpr|itemknn|popularity] [--epsilon E --delta D]
    persona budget set --purpose P --epsilon E --delta D [--period-days N]
    persona budget [show] [--purpose P] [--json]
    persona audit verify [--anchor SEQ:HASH] [--chain-only] [--json]
    persona audit head
    persona retention show|apply [--json]
    persona evaluate [--model M] [--k K ...] [--leave-out N | --test-from TIME] [--json]
    persona curate set --model DIR [--pin ITEM[@POS] ...] [--block ITEM ...] --reason TEXT
    persona curate clear|show --model DIR
    persona recommend USER --model DIR [-n 10] [--json]
    persona explain USER ITEM --model DIR [--json] [--counterfactual]
    persona report --model DIR --out DIR [--user USER] [--org FILE]
                   [--controller 'NAME <CONTACT>'] [--dpo 'NAME <CONTACT>']
    persona export USER [--out FILE]
    persona erase USER --yes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from persona._cli import audit as audit_cli
from persona._cli import common
from persona._cli import consent_import as consent_import_cli
from persona._cli import curate as curate_cli
from persona._cli import evaluate as evaluate_cli
from persona._cli import retention as retention_cli
from persona.errors import PersonaError, RetentionWarning, ValidationError

__all__ = ["build_parser", "main"]

UsageError = common.UsageError
_store = common.open_store
_print_json = common.print_json
_read_rows = common.read_rows
_int_flag = common.int_flag
_MODEL_NAMES = common.MODEL_NAMES
MAX_ITERATIONS = common.MAX_ITERATIONS
MAX_FACTORS = common.MAX_FACTORS
MAX_N = common.MAX_N

_FIELDS = ("user", "item", "feature", "value", "at", "id")
_BATCH = 100_000


# ---------------------------------------------------------------------- commands
def _demo(args: argparse.Namespace) -> int:
    from persona.demo import run_demo

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="persona-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    run_demo(folder, out=sys.stdout, customers=args.customers)
    return 0


def _purpose_add(args: argparse.Namespace) -> int:
    store = _store(args)
    store.define_purpose(args.name, description=args.description, sharing=args.sharing)
    print(f"purpose {args.name!r} defined in {args.store}")
    return 0


def _feature_add(args: argparse.Namespace) -> int:
    store = _store(args)
    retention = None if args.retention_days.lower() == "none" else _int(args.retention_days,
                                                                         "--retention-days")
    store.define_feature(
        args.name, purposes=[p.strip() for p in args.purposes.split(",") if p.strip()],
        category=args.category, retention_days=retention,
    )
    print(f"feature {args.name!r} defined in {args.store}")
    return 0


def _consent(args: argparse.Namespace) -> int:
    store = _store(args)
    action = {"grant": store.grant, "withdraw": store.withdraw, "decline": store.decline}
    record = action[args.action](args.user, args.purpose, source=args.source)
    print(f"{args.action} recorded for {args.purpose!r} at {record.at.isoformat()}")
    return 0


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} needs a whole number or 'none', not {text!r}") from None


def _convert(row: dict[str, Any], mapping: dict[str, str], feature: str | None,
             at_unit: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for field in _FIELDS:
        column = mapping.get(field, field)
        if column in row and row[column] not in (None, ""):
            event[field] = row[column]
    if feature is not None:
        event["feature"] = feature
    value = event.get("value")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else left as text: validation names the row
            event["value"] = float(value)
    # ids and times go to store.ingest as read: it applies persona's one id rule (an int is
    # its decimal string; a float such as 170.0 is refused with the fix) and its time rule
    # (numbers need --at-unit, times without a zone --tz); with --at-unit, a CSV's numbers
    # are numbers
    at = event.get("at")
    if at_unit is not None and isinstance(at, str):
        with contextlib.suppress(ValueError):  # else left as text: validation names the row
            event["at"] = int(at) if at.strip().lstrip("+-").isdigit() else float(at)
    return event


def _ingest(args: argparse.Namespace) -> int:
    store = _store(args)
    mapping = common.field_map(args.map or [], _FIELDS)
    if args.tz:  # checked here too, to name the flag
        try:
            ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"--tz {args.tz!r} is not a time zone (try Europe/London)") from None
    totals = {"received": 0, "inserted": 0, "duplicates": 0, "rejected": 0}
    outside: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    base = 0

    def flush() -> None:
        nonlocal base
        if not batch:
            return
        try:
            with warnings.catch_warnings():  # summed up below, in the command's words
                warnings.simplefilter("ignore", RetentionWarning)
                report = store.ingest(batch, on_invalid=args.on_invalid, dedupe=args.dedupe,
                                      at_unit=args.at_unit, tz=args.tz or None)
        except ValidationError as exc:
            raise UsageError(_ingest_message(exc, base)) from None
        for key in totals:
            totals[key] += getattr(report, key)
        for name, n in report.outside_retention.items():
            outside[name] = outside.get(name, 0) + n
        base += len(batch)
        batch.clear()

    for row in _read_rows(Path(args.file), args.format):
        event = _convert(row, mapping, args.feature, args.at_unit)
        # a batch is full at _BATCH rows, but a run of one person's rows at one time is
        # never split: identical rows are then counted as in one batch (see --dedupe)
        if len(batch) >= _BATCH and _run(event) != _run(batch[-1]):
            flush()
        batch.append(event)
    flush()
    late = sum(outside.values())
    print(
        f"ingested {totals['inserted']:,} of {totals['received']:,} events "
        f"({totals['duplicates']:,} duplicates, {totals['rejected']:,} rejected"
        f"{f', {late:,} outside retention' if late else ''}) into {args.store}"
    )
    if late:
        kept = {name: spec.retention_days for name, spec in store.features.items()}
        which = "; ".join(f"{name!r} keeps {kept.get(name)} days: {n:,}"
                          for name, n in outside.items())
        print(
            f"note: {late:,} events were not stored: they are already older than their "
            f"feature's retention ({which}). To use them, raise it (persona feature add NAME "
            "... --retention-days N|none) and ingest the file again.",
            file=sys.stderr,
        )
    return 0


def _run(event: dict[str, Any]) -> tuple[Any, Any]:
    return event.get("user"), event.get("at")


def _ingest_message(exc: ValidationError, base: int) -> str:
    """A refused batch's message in the command line's words: its flags, not the API's
    arguments, and the file row of the first problem."""
    first = exc.errors[0] if exc.errors else {}
    row = first.get("row")
    where = "" if row is None else f" (file row {base + int(row) + 1})"
    text = str(exc).replace(
        "pass on_invalid='skip' to store the valid rows and count the rest",
        "run again with --on-invalid skip to store the valid rows and count the rest",
    )
    # the time rule's advice, in the flags' words
    text = re.sub(r"ingest\(\.\.\., at_unit='(\w+)'\)", r"--at-unit \1", text)
    text = re.sub(r"at_unit='(\w+)'", r"--at-unit \1", text)
    text = re.sub(r"ingest\(\.\.\., tz='([^']+)'\)", r"--tz \1", text)
    text = re.sub(r"\btz='([^']+)'", r"--tz \1", text)
    return f"{text}{where}"


def _catalogue_import(args: argparse.Namespace) -> int:
    store = _store(args)
    ids: list[str] = []
    labels: dict[str, str] = {}
    for k, row in enumerate(_read_rows(Path(args.file), args.format), start=1):
        item = row.get(args.item_column)
        if item in (None, ""):
            raise UsageError(
                f"{args.file}, row {k}: no item id in column {args.item_column!r}; name the "
                "column with --item-column"
            )
        ids.append(str(item))
        if args.label_column is not None and row.get(args.label_column) not in (None, ""):
            labels[str(item)] = str(row[args.label_column]).strip()
    store.define_items(ids)
    if labels:
        store.label_items(labels)
    print(f"declared {len(dict.fromkeys(ids)):,} items ({len(labels):,} with a label) in "
          f"{args.store}; the catalogue now has {len(store.catalogue()):,} items")
    return 0


def _catalogue_show(args: argparse.Namespace) -> int:
    store = _store(args, existing=True)
    items = store.catalogue()
    labels = store.item_labels(items)
    if args.json:
        _print_json([{"item": item, "label": labels.get(item)} for item in items])
        return 0
    for item in items:
        print(f"{item}\t{labels.get(item, '')}".rstrip("\t"))
    print(f"{len(items):,} declared items", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    import persona

    store = _store(args)
    params: dict[str, Any] = {}
    if args.model in ("als", "bpr"):
        params = {"factors": args.factors, "iterations": args.iterations, "random_state": 0}
    model = {"als": persona.ALS, "bpr": persona.BPR, "itemknn": persona.ItemKNN,
             "popularity": persona.Popularity}[args.model](**params)
    privacy = None
    if args.epsilon is not None:
        privacy = persona.DP(epsilon=args.epsilon, delta=args.delta)
    p = persona.Personalizer(store, args.purpose, model=model, privacy=privacy)
    p.fit()
    folder = p.save(args.out)
    print(f"trained {type(p.model_).__name__} on {len(p.model_.users_):,} people and "
          f"{len(p.model_.items_):,} items; saved to {folder}")
    return 0


def _load(args: argparse.Namespace) -> Any:
    import persona

    store = _store(args)
    if not Path(args.model).exists():
        raise UsageError(f"no saved model at {args.model}; train one with 'persona train'")
    return persona.Personalizer.load(args.model, store)


def _recommend(args: argparse.Namespace) -> int:
    p = _load(args)
    try:
        recs = p.recommend(args.user, n=args.n)
    finally:
        p.store.close()  # commits the read's audit entry and what was shown
    if not recs:
        note = (
            f"nothing to recommend to {args.user!r}: the model has no item left to show "
            "them (they have every item it knows, or the rest are excluded); train again "
            "when there are more items, or check 'persona export' for what is held"
        )
        if args.json:
            _print_json([])
            print(note, file=sys.stderr)
        else:
            print(note)
        return 0
    if args.json:
        _print_json([r.model_dump(mode="json") for r in recs])
        return 0
    for r in recs:
        print(f"{r.rank:>3}. {r.explanation.label if r.explanation else r.item}  [{r.item}]")
        if r.explanation is not None:
            print(f"     {r.explanation.text}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    p = _load(args)
    e = p.explain(args.user, args.item, counterfactual=args.counterfactual)
    if args.json:
        print(e.model_dump_json(indent=2))
    else:
        print(e.text)
    return 0


def _report(args: argparse.Namespace) -> int:
    import persona.reports as reports

    org = args.org or reports.Organisation()
    update = {k: getattr(args, k) for k in ("controller", "dpo") if getattr(args, k)}
    org = org.model_copy(update=update)
    p = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = {
        "main_parameters": reports.main_parameters(p, list_length=args.list_length),
        "records_of_processing": reports.records_of_processing(p.store, **org.arguments()),
    }
    if args.user:
        made[f"transparency-{_safe(args.user)}"] = reports.transparency(
            p.store, args.user, **org.arguments("transparency"))
    for name, rep in made.items():
        (out / f"{name}.json").write_text(rep.model_dump_json(indent=2), encoding="utf-8")
        (out / f"{name}.html").write_text(rep.to_html(document=True), encoding="utf-8")
        (out / f"{name}.md").write_text(rep.to_markdown(), encoding="utf-8")
    print(f"wrote {len(made)} reports (JSON, HTML, Markdown) to {out}")
    missing = made["records_of_processing"].missing  # type: ignore[attr-defined]
    if missing:
        print(f"note: the record of processing is not fileable without the {' and '.join(missing)}"
              "; pass --controller and --dpo, or --org FILE", file=sys.stderr)
    return 0


def _contact_flag(text: str) -> Any:
    """``"NAME <CONTACT>"`` as a :class:`persona.reports.Contact` (argparse ``type``)."""
    from persona.reports import Contact

    name, sep, rest = text.partition("<")
    if not sep or not rest.rstrip().endswith(">") or not name.strip() or not rest[:-1].strip():
        raise argparse.ArgumentTypeError(
            f"needs 'NAME <CONTACT>', e.g. 'Example Shop Ltd <privacy@example.com>', not "
            f"{text!r}")
    return Contact(name=name.strip(), contact=rest.rstrip()[:-1].strip())


def _org_flag(text: str) -> Any:
    """The organisation's details from a JSON or TOML file (argparse ``type``)."""
    from persona.reports import Organisation

    try:
        return Organisation.load(text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror}") from None
    except PersonaError as exc:
        raise argparse.ArgumentTypeError(_one_line(str(exc))) from None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


def _export(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.export(args.user)
    text = json.dumps(record, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote everything held about {args.user!r} to {args.out}")
    else:
        print(text)
    return 0


def _erase(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError(
            f"erasing {args.user!r} cannot be undone; run again with --yes to confirm"
        )
    store = _store(args)
    report = store.erase(args.user)
    print(f"erased {report.events:,} events and {report.consent_events:,} consent records; "
          f"the audit log keeps the pseudonym {report.subject}")
    return 0


# ---------------------------------------------------------------------- budgets
def _float_flag(rule: str, ok: Any) -> Any:
    """An argparse ``type`` for a finite number meeting ``ok`` (no nan, no infinity); the
    parser's one-line error names the flag."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"needs {rule}, not {text!r}")
        return value

    return parse


def _out_path(text: str) -> str:
    """An argparse ``type`` for an output path: inside the current folder (no ``..``
    component, and not resolving elsewhere, also through a symbolic link)."""
    path = Path(text)
    here = Path.cwd().resolve()
    full = (here / path).resolve()
    if ".." in path.parts or (full != here and here not in full.parents):
        raise argparse.ArgumentTypeError(
            f"must be a path inside the current folder ({here}), without '..', not "
            f"{text!r}; cd to where the output should go and give a relative path"
        )
    return text


_EPSILON = _float_flag("a finite number > 0", lambda v: v > 0)
_DELTA = _float_flag("a finite number with 0 <= delta < 1", lambda v: 0 <= v < 1)


def _period_days(text: str) -> int | None:
    if text.strip().lower() in ("none", "lifetime"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 36_500:
        raise argparse.ArgumentTypeError(
            f"needs a whole number of days from 1 to 36500, or 'none' for a "
            f"lifetime total, not {text!r}"
        )
    return value


def _budget_set(args: argparse.Namespace) -> int:
    store = _store(args)
    policy = store.set_privacy_budget(args.purpose, epsilon=args.epsilon, delta=args.delta,
                                      period_days=args.period_days)
    print(f"privacy budget of {args.purpose!r} set in {args.store}: {policy.describe()}")
    return 0


def _budget_state(store: Any, purpose: str) -> dict[str, Any]:
    from persona.schema import spending

    policy = store.privacy_budget_policy(purpose)
    charges = store.privacy_charges(purpose)
    if policy is None:
        s = spending(store.charge_storage().load_entries(), purpose, period_days=None,
                     now=datetime.now(UTC))
        spent, remaining = (s.epsilon, s.delta), None
    else:
        ledger = store.privacy_ledger(purpose)
        spent, remaining = ledger.spent(purpose), ledger.remaining(purpose)
    return {
        "purpose": purpose,
        "policy": None if policy is None else policy.model_dump(mode="json"),
        "statement": "no budget set: the first private fit sets a lifetime total equal to its "
                     "own (ε, δ)" if policy is None else policy.describe(),
        "spent": {"epsilon": spent[0], "delta": spent[1]},
        "remaining": None if remaining is None
        else {"epsilon": remaining[0], "delta": remaining[1]},
        "charges": [c.model_dump(mode="json") for c in charges],
    }


def _budget_show(args: argparse.Namespace) -> int:
    store = _store(args, existing=True)
    purposes = [args.purpose] if args.purpose else sorted(store.purposes)
    states = [_budget_state(store, p) for p in purposes]
    if args.json:
        _print_json(states)
        return 0
    if not states:
        print(f"no purposes are defined in {args.store}")
    for st in states:
        policy = st["policy"]
        within = "" if policy is None or policy["period_days"] is None \
            else f" in the last {policy['period_days']} days"
        print(f"purpose {st['purpose']!r}")
        print(f"  budget:    {st['statement']}")
        print(f"  spent:     ε = {st['spent']['epsilon']:.4g}, "
              f"δ = {st['spent']['delta']:.3g}{within}")
        if st["remaining"] is not None:
            print(f"  remaining: ε = {st['remaining']['epsilon']:.4g}, "
                  f"δ = {st['remaining']['delta']:.3g}")
        print(f"  charges:   {len(st['charges'])}" + (" (oldest first)" if st["charges"] else ""))
        for c in st["charges"]:
            print(f"    {c['created_at'][:19]}  {c['status']:<8}  {c['mechanism']}: "
                  f"ε = {c['epsilon']:.4g}, δ = {c['delta']:.3g}"
                  + (f", snapshot {c['snapshot']}" if c["snapshot"] else ""))
    return 0


# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with usage mistakes on one line (exit 2), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="persona", description="persona: personalization that people can trust.",
    )
    parser.add_argument(
        "--store", default=os.environ.get("PERSONA_STORE", "persona.db"),
        help="the store file (default: $PERSONA_STORE or persona.db)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the end-to-end demo on the bundled shop",
                          description="Build a store from the bundled Online Retail sample in "
                          "a fresh folder, train a private model, and show recommendations, "
                          "explanations, consent changes, erasure and reviewer reports.")
    demo.add_argument("--folder", help="where to write the demo's files (default: a new folder)")
    demo.add_argument("--customers", type=_int_flag(10, 100_000), default=600,
                      help="how many customers to use (10 to 100000)")
    demo.set_defaults(func=_demo)

    purpose = sub.add_parser("purpose", help="define purposes people consent to")
    psub = purpose.add_subparsers(dest="action", metavar="ACTION", required=True)
    padd = psub.add_parser("add", help="define (or update) a purpose")
    padd.add_argument("name")
    padd.add_argument("--description", required=True, help="plain words shown to people")
    padd.add_argument("--sharing", action="store_true", help="the purpose sells or shares data")
    padd.set_defaults(func=_purpose_add)

    feature = sub.add_parser("feature", help="define features and the purposes they serve")
    fsub = feature.add_subparsers(dest="action", metavar="ACTION", required=True)
    fadd = fsub.add_parser("add", help="define (or update) a feature")
    fadd.add_argument("name")
    fadd.add_argument("--purposes", required=True, help="comma-separated purposes")
    fadd.add_argument("--category", required=True, help="data category, e.g. 'purchase history'")
    fadd.add_argument("--retention-days", required=True, help="days to keep events, or 'none'")
    fadd.set_defaults(func=_feature_add)

    consent = sub.add_parser(
        "consent", help="record a consent choice (or many: 'consent import FILE')",
        epilog="Many choices from a file, all or none: persona consent import FILE (see "
        "'persona consent import --help'). Example: persona consent u1 personalization "
        "grant --source 'signup form v3'")
    consent.add_argument("user")
    consent.add_argument("purpose")
    consent.add_argument("action", choices=["grant", "withdraw", "decline"])
    consent.add_argument("--source", required=True, help="where the choice was made")
    consent.set_defaults(func=_consent)

    ingest = sub.add_parser("ingest", help="load events from CSV or JSON lines",
                            description="Each row becomes one event. Use --map to name the "
                            "columns holding each field, e.g. --map user=CustomerID.")
    ingest.add_argument("file")
    ingest.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                        help=f"column for a field ({', '.join(_FIELDS)}); repeat as needed")
    ingest.add_argument("--feature", help="the feature of every row (instead of a column)")
    ingest.add_argument("--tz", help="time zone of times written without one, e.g. Europe/London")
    ingest.add_argument("--at-unit", choices=("s", "ms", "us", "ns"),
                        help="what numeric times count since 1970-01-01 UTC: s (unix time), "
                             "ms, us or ns; numbers without it are refused")
    ingest.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    ingest.add_argument("--on-invalid", choices=["raise", "skip"], default="raise",
                        help="reject a batch with a bad row (default) or skip bad rows")
    ingest.add_argument("--dedupe", choices=["none", "exact"], default="none",
                        help="rows without an id: keep identical ones as repeat purchases "
                        "(none, default; the same file sent again adds nothing) or store "
                        "them once (exact)")
    ingest.set_defaults(func=_ingest)

    catalogue = sub.add_parser(
        "catalogue", help="declare the items the shop sells (the public item universe)",
        description="Private models score exactly the declared items: declare the catalogue "
        "before a private 'persona train'. Example: persona catalogue import products.csv "
        "--item-column StockCode --label-column Description")
    csub = catalogue.add_subparsers(dest="action", metavar="ACTION", required=True)
    cimp = csub.add_parser("import", help="declare the items listed in a CSV or JSON lines file")
    cimp.add_argument("file")
    cimp.add_argument("--store", **common.STORE_FLAG)
    cimp.add_argument("--item-column", default="item", help="column with the item id")
    cimp.add_argument("--label-column", help="column with the item's title (optional)")
    cimp.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    cimp.set_defaults(func=_catalogue_import)
    cshow = csub.add_parser("show", help="list the declared items and their titles",
                            description="One item a line, its id and title separated by a "
                            "tab, in the order declared; the count goes to stderr.",
                            epilog="Example: persona catalogue show --json")
    cshow.add_argument("--store", **common.STORE_FLAG)
    cshow.add_argument("--json", action="store_true",
                       help="a JSON list of {item, label} (label null when untitled)")
    cshow.set_defaults(func=_catalogue_show)

    train = sub.add_parser("train", help="fit a model on the consented data and save it")
    train.add_argument("--out", required=True, type=_out_path,
                       help="folder to save the model in (inside the current folder)")
    train.add_argument("--purpose", default="personalization")
    train.add_argument("--model", choices=_MODEL_NAMES, default="als")
    train.add_argument("--factors", type=_int_flag(1, MAX_FACTORS), default=64,
                       help=f"latent factors of als/bpr (1 to {MAX_FACTORS})")
    train.add_argument("--iterations", type=_int_flag(1, MAX_ITERATIONS), default=15,
                       help=f"training sweeps of als/bpr (1 to {MAX_ITERATIONS})")
    train.add_argument("--epsilon", type=_EPSILON, help="train with differential privacy")
    train.add_argument("--delta", type=_DELTA, default=1e-6)
    train.set_defaults(func=_train)

    budget = sub.add_parser("budget", help="set and show privacy budgets",
                            description="A purpose's privacy budget is what all private fits "
                            "on its data may spend: a lifetime total (the default) or an "
                            "amount per rolling period, which is a weaker guarantee.")
    budget.set_defaults(func=_budget_show, purpose=None, json=False)  # 'persona budget'
    bsub = budget.add_subparsers(dest="action", metavar="ACTION")
    store_flag = common.STORE_FLAG
    bset = bsub.add_parser("set", help="set a purpose's privacy budget (recorded in the audit log)",
                           epilog="Example: persona budget set --purpose personalization "
                           "--epsilon 4 --delta 1e-6 --period-days 365")
    bset.add_argument("--store", **store_flag)
    bset.add_argument("--purpose", required=True)
    bset.add_argument("--epsilon", required=True, type=_EPSILON)
    bset.add_argument("--delta", required=True, type=_DELTA)
    bset.add_argument("--period-days", type=_period_days, default=None,
                      help="a budget per rolling period of N days (default: a lifetime total)")
    bset.set_defaults(func=_budget_set)
    bshow = bsub.add_parser("show", help="budgets: policy, spent, remaining and charges "
                            "(the default)", epilog="Example: persona budget show --purpose "
                            "personalization --json")
    bshow.add_argument("--store", **store_flag)
    bshow.add_argument("--purpose", help="one purpose (default: every purpose)")
    bshow.add_argument("--json", action="store_true")
    bshow.set_defaults(func=_budget_show)

    consent_import_cli.register(sub)
    audit_cli.register(sub)
    curate_cli.register(sub)
    evaluate_cli.register(sub)
    retention_cli.register(sub)

    rec = sub.add_parser("recommend", help="recommend items to a person, with explanations")
    rec.add_argument("user")
    rec.add_argument("--model", required=True, help="folder written by 'persona train'")
    rec.add_argument("-n", type=_int_flag(1, MAX_N), default=10,
                     help=f"how many items (1 to {MAX_N})")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=_recommend)

    exp = sub.add_parser("explain", help="explain why an item is (or is not) recommended")
    exp.add_argument("user")
    exp.add_argument("item")
    exp.add_argument("--model", required=True)
    exp.add_argument("--json", action="store_true")
    exp.add_argument("--counterfactual", action="store_true")
    exp.set_defaults(func=_explain)

    rep = sub.add_parser("report", help="write the privacy reviewer reports")
    rep.add_argument("--model", required=True)
    rep.add_argument("--out", required=True, type=_out_path,
                     help="folder to write the reports in (inside the current folder)")
    rep.add_argument("--user", help="also write this person's transparency report")
    rep.add_argument("--org", type=_org_flag, metavar="FILE",
                     help="the organisation's details for the GDPR reports, JSON or TOML: "
                     "controller, dpo, representative, supervisory_authority, recipients, "
                     "transfers, security_measures, data_subjects, data_sources")
    rep.add_argument("--controller", type=_contact_flag, metavar="'NAME <CONTACT>'",
                     help="the controller (overrides the file's)")
    rep.add_argument("--dpo", type=_contact_flag, metavar="'NAME <CONTACT>'",
                     help="the data-protection officer (overrides the file's)")
    rep.add_argument("--list-length", type=_int_flag(1, MAX_N), default=None,
                     help="how many suggestions the service shows at a time")
    rep.set_defaults(func=_report)

    export = sub.add_parser("export", help="everything held about a person, as JSON")
    export.add_argument("user")
    export.add_argument("--out", type=_out_path,
                        help="write to this file (inside the current folder) instead of the "
                        "screen")
    export.set_defaults(func=_export)

    erase = sub.add_parser("erase", help="erase a person (cannot be undone)")
    erase.add_argument("user")
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    erase.set_defaults(func=_erase)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persona`` command. Returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes the terminal's encoding could not decode
            parser.error(
                f"the argument {arg!r} is not valid UTF-8 text; give ids and names in UTF-8"
            )
    args = parser.parse_args(consent_import_cli.split_argv(argv))
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except PersonaError as exc:
        print(f"persona: error [{exc.code}]: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: the caller's to fix
        print(f"persona: error [file_error]: "
              f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
