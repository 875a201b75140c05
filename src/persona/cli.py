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
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from persona._cli import audit as audit_cli
from persona._cli import budget as budget_cli
from persona._cli import catalogue as catalogue_cli
from persona._cli import common
from persona._cli import consent_import as consent_import_cli
from persona._cli import curate as curate_cli
from persona._cli import evaluate as evaluate_cli
from persona._cli import ingest as ingest_cli
from persona._cli import retention as retention_cli
from persona._cli.common import model_from_flags
from persona.errors import PersonaError

if TYPE_CHECKING:
    from persona.personalizer import Personalizer
    from persona.reports import Contact, Organisation

__all__ = ["build_parser", "main"]

UsageError = common.UsageError
_store = common.open_store
_print_json = common.print_json
_int_flag = common.int_flag
_MODEL_NAMES = common.MODEL_NAMES
MAX_ITERATIONS = common.MAX_ITERATIONS
MAX_FACTORS = common.MAX_FACTORS
MAX_N = common.MAX_N
_out_path = common.out_path
_EPSILON = common.EPSILON_FLAG
_DELTA = common.DELTA_FLAG


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


def _train(args: argparse.Namespace) -> int:
    import persona

    store = _store(args)
    model = model_from_flags(args)
    privacy = None
    if args.epsilon is not None:
        privacy = persona.DP(epsilon=args.epsilon, delta=args.delta)
    p = persona.Personalizer(store, args.purpose, model=model, privacy=privacy)
    p.fit()
    folder = p.save(args.out)
    print(f"trained {type(p.model_).__name__} on {len(p.model_.users_):,} people and "
          f"{len(p.model_.items_):,} items; saved to {folder}")
    return 0


def _load(args: argparse.Namespace) -> Personalizer:
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


def _contact_flag(text: str) -> Contact:
    """``"NAME <CONTACT>"`` as a :class:`persona.reports.Contact` (argparse ``type``)."""
    from persona.reports import Contact

    name, sep, rest = text.partition("<")
    if not sep or not rest.rstrip().endswith(">") or not name.strip() or not rest[:-1].strip():
        raise argparse.ArgumentTypeError(
            f"needs 'NAME <CONTACT>', e.g. 'Example Shop Ltd <privacy@example.com>', not "
            f"{text!r}")
    return Contact(name=name.strip(), contact=rest.rstrip()[:-1].strip())


def _org_flag(text: str) -> Organisation:
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

    ingest_cli.register(sub)
    catalogue_cli.register(sub)

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

    budget_cli.register(sub)
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
