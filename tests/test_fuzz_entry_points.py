"""Fuzz every public entry point with hostile values (issue 17, "Every error a user can
cause is a PersonaError").

Each test draws one entry point (a ``Store`` method, a ``Personalizer`` method, a fitted
model's ``recommend/recommend_batch/explain/fold_in``, ``persona.models.load`` or a CLI
command) and one hostile value put in one of its arguments: wrong types and containers,
``None``, NaN and infinities, huge numbers, bools where numbers belong, control
characters, lone surrogates, NFC/NFD twins, SQL fragments and 1 MB strings.

It asserts that

* only :class:`persona.errors.PersonaError` escapes (an answer is fine too);
* a refused call leaves the store's fingerprint unchanged: every table, so everyone's
  export, and the audit log's head (``store.audit.head()``);
* the CLI exits 0, 1 or 2, and on a refusal writes one line to stderr, never a traceback.

Every example run is counted in ``CASES_RUN``; the last test prints the total
(``pytest tests/test_fuzz_entry_points.py -s``) so the count can be quoted.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import persona
from persona.cli import main as cli_main
from persona.errors import PersonaError
from store_helpers import Clock, event, fingerprint, shop

CASES_RUN: Counter[str] = Counter()

# ---------------------------------------------------------------------- hostile values
JOSE_NFC = unicodedata.normalize("NFC", "José")
JOSE_NFD = unicodedata.normalize("NFD", "José")
MEGABYTE = "x" * (1 << 20)
SQL = ["'; DROP TABLE subjects; --", "\" OR 1=1 --", "ana' --", "%", "_", "*"]
SPECIAL_TEXT = [
    "", " ", "\t", "ana\x00", "\x00", "\x1b[31m", "ana\n", "\u202e", "\ufeffana", "ana\ud800",
    "\udc80", JOSE_NFD, JOSE_NFC, MEGABYTE, "nan", "inf", "-1", "1e309",
    "99999999999999999999", "../../etc/passwd", "/dev/null", "ana", "sku-1", "personalization",
    *SQL,
]
SPECIAL_NUMBERS = [
    math.nan, math.inf, -math.inf, -0.0, 0, -1, 1e25, 1e308, 2**63, -(2**63), 10**400, True,
    False, 1.5,
]

scalars = st.one_of(
    st.none(),
    st.sampled_from(SPECIAL_TEXT),
    st.sampled_from(SPECIAL_NUMBERS),
    st.text(max_size=12),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
)
hostile = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.tuples(scalars),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
    st.frozensets(st.sampled_from(["ana", "sku-1", JOSE_NFD]), max_size=2),
    st.builds(object),
)
# what a command line can carry: text only
hostile_arg = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=12),
                        st.integers().map(str), st.floats().map(str))

PEOPLE = ("ana", "bo", "cy", JOSE_NFC)


def _world() -> tuple[persona.Store, Any]:
    store = shop(clock=Clock())
    for u, items in (("ana", ["sku-1", "sku-2"]), ("bo", ["sku-2", "sku-3"]),
                     ("cy", ["sku-1", "sku-3"]), (JOSE_NFC, ["sku-1", "sku-2", "sku-3"])):
        store.grant(u, "personalization", source="form")
        store.ingest([event(user=u, item=i) for i in items])
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    return store, p


@pytest.fixture(scope="module")
def world() -> tuple[persona.Store, Any]:
    return _world()


def _state(store: persona.Store) -> tuple[Any, ...]:
    store.flush()  # serving reads' entries wait in the journal until committed
    return fingerprint(store), store.audit.head()


def _run(store: persona.Store | None, call: Callable[[], Any]) -> None:
    """Call; an answer is fine, a PersonaError must leave the store as it was."""
    before = _state(store) if store is not None else None
    refused: PersonaError | None = None
    try:
        call()
    except PersonaError as exc:
        refused = exc
    if refused is not None:
        assert refused.code, f"{type(refused).__name__} without a code"
        if store is not None:
            assert _state(store) == before, "a refused call changed the store"


# ---------------------------------------------------------------------- the Store
STORE_CALLS: dict[str, Callable[[persona.Store, Any], Any]] = {
    "grant user": lambda s, v: s.grant(v, "analytics", source="f"),
    "grant purpose": lambda s, v: s.grant("ana", v, source="f"),
    "grant source": lambda s, v: s.grant("ana", "analytics", source=v),
    "grant notice_version": lambda s, v: s.grant("ana", "analytics", source="f",
                                                 notice_version=v),
    "withdraw user": lambda s, v: s.withdraw(v, "analytics"),
    "withdraw purpose": lambda s, v: s.withdraw("bo", v),
    "decline user": lambda s, v: s.decline(v, "ads", source="f"),
    "decline purpose": lambda s, v: s.decline("bo", v, source="f"),
    "ingest events": lambda s, v: s.ingest(v),
    "ingest row": lambda s, v: s.ingest([v]),
    "ingest user": lambda s, v: s.ingest([event(user=v)]),
    "ingest item": lambda s, v: s.ingest([event(user="ana", item=v)]),
    "ingest feature": lambda s, v: s.ingest([event(user="ana", feature=v)]),
    "ingest value": lambda s, v: s.ingest([event(user="ana", value=v)]),
    "ingest at": lambda s, v: s.ingest([event(user="ana", at=v)]),
    "ingest on_invalid": lambda s, v: s.ingest([event(user="ana")], on_invalid=v),
    "define_purpose name": lambda s, v: s.define_purpose(v, description="d"),
    "define_purpose description": lambda s, v: s.define_purpose("fz", description=v),
    "define_purpose sharing": lambda s, v: s.define_purpose("fz", description="d", sharing=v),
    "define_purpose tcf": lambda s, v: s.define_purpose("fz", description="d", tcf_purposes=v),
    "define_feature name": lambda s, v: s.define_feature(
        v, purposes=["analytics"], category="c", retention_days=1),
    "define_feature purposes": lambda s, v: s.define_feature(
        "fz", purposes=v, category="c", retention_days=1),
    "define_feature purpose": lambda s, v: s.define_feature(
        "fz", purposes=[v], category="c", retention_days=1),
    "define_feature category": lambda s, v: s.define_feature(
        "fz", purposes=["analytics"], category=v, retention_days=1),
    "define_feature retention": lambda s, v: s.define_feature(
        "fz", purposes=["analytics"], category="c", retention_days=v),
    "define_items": lambda s, v: s.define_items(v),
    "define_items item": lambda s, v: s.define_items([v]),
    "define_items label": lambda s, v: s.define_items({"sku-1": v}),
    "label_items": lambda s, v: s.label_items(v),
    "label_items item": lambda s, v: s.label_items({v: "t"} if _hashable(v) else v),
    "label_items label": lambda s, v: s.label_items({"sku-1": v}),
    "feedback user": lambda s, v: s.feedback(v, "sku-1", "not_interested"),
    "feedback item": lambda s, v: s.feedback("cy", v, "not_interested"),
    "feedback kind": lambda s, v: s.feedback("cy", "sku-1", v),
    "record action": lambda s, v: s.record(v, {"k": 1}),
    "record detail": lambda s, v: s.record("app.fuzz", v),
    "record detail value": lambda s, v: s.record("app.fuzz", {"k": v}),
    "record detail key": lambda s, v: s.record("app.fuzz", {v: 1} if _hashable(v) else v),
    "record user": lambda s, v: s.record("app.fuzz", {}, user=v),
    "export": lambda s, v: s.export(v),
    "erase": lambda s, v: s.erase(v),
    "scope events": lambda s, v: s.scope(v).events(),
    "scope history": lambda s, v: s.scope("personalization").history(v),
    "set_privacy_budget purpose": lambda s, v: s.set_privacy_budget(v, epsilon=1, delta=1e-6),
    "set_privacy_budget epsilon": lambda s, v: s.set_privacy_budget(
        "personalization", epsilon=v, delta=1e-6),
    "set_privacy_budget delta": lambda s, v: s.set_privacy_budget(
        "personalization", epsilon=1.0, delta=v),
    "set_privacy_budget period": lambda s, v: s.set_privacy_budget(
        "personalization", epsilon=1.0, delta=1e-6, period_days=v),
    "consent_history": lambda s, v: s.consent_history(v),
    "has_consent user": lambda s, v: s.has_consent(v, "personalization"),
    "has_consent purpose": lambda s, v: s.has_consent("ana", v),
    # the rest of the Store's public methods
    # the public methods issue 19 added for the personalizer
    "read_for_serving purpose": lambda s, v: s.read_for_serving(v, "ana"),
    "read_for_serving user": lambda s, v: s.read_for_serving("personalization", v),
    "last_shown user": lambda s, v: s.last_shown(v, "sku-1", "2026-11-30T00:00:00Z"),
    "last_shown item": lambda s, v: s.last_shown("ana", v, "2026-11-30T00:00:00Z"),
    "last_shown at": lambda s, v: s.last_shown("ana", "sku-1", v),
    "last_shown purpose": lambda s, v: s.last_shown("ana", "sku-1", "2026-11-30T00:00:00Z", v),
    "enqueue_serving": lambda s, v: s.enqueue_serving(v),
    "history_for_serving served": lambda s, v: s.history_for_serving(v, "ana"),
    "history_for_serving user": lambda s, v: s.history_for_serving(
        s.read_for_serving("personalization", "ana"), v),
    "grant_many rows": lambda s, v: s.grant_many(v, source="CMP"),
    "grant_many row": lambda s, v: s.grant_many([v], source="CMP"),
    "grant_many user": lambda s, v: s.grant_many(
        [{"user": v, "purpose": "personalization"}], source="CMP"),
    "grant_many source": lambda s, v: s.grant_many(
        [{"user": "cy", "purpose": "personalization"}], source=v),
    "grant_many notice_version": lambda s, v: s.grant_many(
        [{"user": "cy", "purpose": "personalization"}], source="CMP", notice_version=v),
    "grant_many at": lambda s, v: s.grant_many(
        [{"user": "cy", "purpose": "personalization", "at": v}], source="CMP"),
    "do_not_sell user": lambda s, v: s.do_not_sell(v),
    "do_not_sell source": lambda s, v: s.do_not_sell("cy", source=v),
    "apply_tcf user": lambda s, v: s.apply_tcf(v, [1]),
    "apply_tcf purposes": lambda s, v: s.apply_tcf("cy", v),
    "apply_tcf purpose": lambda s, v: s.apply_tcf("cy", [v]),
    "apply_consent_mode user": lambda s, v: s.apply_consent_mode(v, {"ad_user_data": "granted"}),
    "apply_consent_mode signals": lambda s, v: s.apply_consent_mode("cy", v),
    "apply_consent_mode signal": lambda s, v: s.apply_consent_mode("cy", {"ad_user_data": v}),
    "clear_feedback user": lambda s, v: s.clear_feedback(v),
    "clear_feedback item": lambda s, v: s.clear_feedback("cy", v),
    "clear_feedback kind": lambda s, v: s.clear_feedback("cy", None, v),
    "feedback_of": lambda s, v: s.feedback_of(v),
    "consent_status": lambda s, v: s.consent_status(v),
    "consented": lambda s, v: s.consented(v),
    "privacy_budget": lambda s, v: s.privacy_budget(v),
    "privacy_ledger": lambda s, v: s.privacy_ledger(v),
    "privacy_ledger default": lambda s, v: s.privacy_ledger("personalization", default=v),
    "privacy_charges": lambda s, v: s.privacy_charges(v),
    "item_labels": lambda s, v: s.item_labels(v),
    "record_explanation user": lambda s, v: s.record_explanation(v, {"items": []}),
    "record_explanation explanation": lambda s, v: s.record_explanation("ana", v),
    "shown_explanations": lambda s, v: s.shown_explanations(v),
    "shown user": lambda s, v: s.shown(v),
    "shown newest_first": lambda s, v: s.shown("ana", newest_first=v),
    "reasons_digest": lambda s, v: s.reasons_digest(v),
    "set_shown_retention": lambda s, v: s.set_shown_retention(v),
    "prefer_non_profiling user": lambda s, v: s.prefer_non_profiling(v),
    "prefer_non_profiling source": lambda s, v: s.prefer_non_profiling("ana", source=v),
    "allow_profiling user": lambda s, v: s.allow_profiling(v),
    "prefers_non_profiling": lambda s, v: s.prefers_non_profiling(v),
    "scope has_consent": lambda s, v: s.scope("personalization").has_consent(v),
    "scope person_lineage": lambda s, v: s.scope("personalization").person_lineage(v),
    "scope not_interested": lambda s, v: s.scope("personalization").not_interested(v),
}


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


# regressions the fuzzer found (each raised a raw exception before the fix)
@example(name="define_purpose tcf", value=None)  # TypeError: not iterable
@example(name="grant notice_version", value="ana\ud800")  # UnicodeEncodeError
@example(name="grant source", value="ana\ud800")  # UnicodeEncodeError
@example(name="define_items label", value="ana\ud800")  # UnicodeEncodeError
@example(name="record detail", value=["00", b"\x00\x00"])  # TypeError: int < str
@example(name="set_privacy_budget delta", value=10**400)  # OverflowError
@example(name="set_privacy_budget epsilon", value=10**400)  # OverflowError
@example(name="clear_feedback kind", value=2**63)  # OverflowError from sqlite3
@example(name="clear_feedback kind", value="nope")  # audited as if it were a kind
@example(name="apply_tcf purpose", value="")  # ValueError from int()
@example(name="apply_tcf purpose", value=[])  # TypeError: unhashable
@example(name="apply_consent_mode signals", value=None)  # AttributeError
@example(name="privacy_budget", value=object())  # sqlite3.ProgrammingError
@example(name="privacy_budget", value="ana\ud800")  # UnicodeEncodeError
@example(name="record_explanation explanation", value=None)  # TypeError
@example(name="item_labels", value=object())  # TypeError: not iterable
@settings(max_examples=settings().max_examples * 20)
@given(name=st.sampled_from(sorted(STORE_CALLS)), value=hostile)
def test_store_entry_points(world: tuple[persona.Store, Any], name: str, value: Any) -> None:
    store, _ = world
    CASES_RUN["store"] += 1
    _run(store, lambda: STORE_CALLS[name](store, value))


# ---------------------------------------------------------------------- the Personalizer
PERSONALIZER_CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "recommend user": lambda p, v: p.recommend(v),
    "recommend n": lambda p, v: p.recommend("ana", n=v),
    "recommend_batch": lambda p, v: p.recommend_batch(v),
    "recommend_batch user": lambda p, v: p.recommend_batch([v]),
    "recommend_batch n": lambda p, v: p.recommend_batch(["ana"], n=v),
    "explain user": lambda p, v: p.explain(v, "sku-1"),
    "explain item": lambda p, v: p.explain("ana", v),
    "explain n": lambda p, v: p.explain("ana", "sku-3", n=v),
    "explain counterfactual": lambda p, v: p.explain("ana", "sku-3", counterfactual=v),
    "explain at": lambda p, v: p.explain("ana", "sku-3", at=v),
    "feedback user": lambda p, v: p.feedback(v, "sku-1", "not_interested"),
    "feedback item": lambda p, v: p.feedback("bo", v, "not_interested"),
    "feedback kind": lambda p, v: p.feedback("bo", "sku-2", v),
    "curate pin": lambda p, v: p.curate(pin=v, reason="r"),
    "curate pin item": lambda p, v: p.curate(pin=[v], reason="r"),
    "curate pin position": lambda p, v: p.curate(pin={"sku-1": v}, reason="r"),
    "curate block": lambda p, v: p.curate(block=v, reason="r"),
    "curate block item": lambda p, v: p.curate(block=[v], reason="r"),
    "curate reason": lambda p, v: p.curate(block=["sku-3"], reason=v),
    "curate by": lambda p, v: p.curate(block=["sku-3"], reason="r", by=v),
    "forget": lambda p, v: p.forget(v),
}


@example(name="explain item", value="\u202e")  # refused after an audited read
@example(name="explain item", value=[])  # refused after an audited read
@example(name="explain n", value=None)  # refused after an audited read
@example(name="curate pin item", value=[])  # TypeError: unhashable
@example(name="curate by", value=math.nan)  # a bare pydantic error
@settings(max_examples=settings().max_examples * 10)
@given(name=st.sampled_from(sorted(PERSONALIZER_CALLS)), value=hostile)
def test_personalizer_entry_points(world: tuple[persona.Store, Any], name: str,
                                   value: Any) -> None:
    store, p = world
    CASES_RUN["personalizer"] += 1
    _run(store, lambda: PERSONALIZER_CALLS[name](p, value))


# ---------------------------------------------------------------------- a fitted model
@pytest.fixture(scope="module")
def models(world: tuple[persona.Store, Any]) -> list[Any]:
    store, _ = world
    return [persona.Personalizer(store, model=m).fit().model_
            for m in (persona.ItemKNN(), persona.ALS(factors=2, iterations=2))]


MODEL_CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "has_user": lambda m, v: m.has_user(v),
    "has_item": lambda m, v: m.has_item(v),
    "history_length": lambda m, v: m.history_length(v),
    "attribute user": lambda m, v: m.attribute(v, ["sku-1"]),
    "attribute items": lambda m, v: m.attribute("ana", v),
    "recommend user": lambda m, v: m.recommend(v),
    "recommend n": lambda m, v: m.recommend("ana", n=v),
    "recommend exclude": lambda m, v: m.recommend("ana", exclude=v),
    "recommend exclude_seen": lambda m, v: m.recommend("ana", exclude_seen=v),
    "recommend_batch": lambda m, v: m.recommend_batch(v),
    "recommend_batch user": lambda m, v: m.recommend_batch([v]),
    "recommend_batch n": lambda m, v: m.recommend_batch(["ana"], n=v),
    "explain user": lambda m, v: m.explain(v, "sku-1"),
    "explain item": lambda m, v: m.explain("ana", v),
    "explain n": lambda m, v: m.explain("ana", "sku-3", n=v),
    "fold_in user": lambda m, v: m.fold_in(v, ["sku-1"]),
    "fold_in history": lambda m, v: m.fold_in("fz-new", v),
    "fold_in item": lambda m, v: m.fold_in("fz-new", [v]),
    "fold_in unknown_items": lambda m, v: m.fold_in("fz-new", ["sku-1"], unknown_items=v),
    "explain counterfactual": lambda m, v: m.explain("bo", "sku-1", counterfactual=v),
    "recommend_arrays": lambda m, v: m.recommend_arrays(v),
    "recommend_arrays user": lambda m, v: m.recommend_arrays([v]),
    "recommend_arrays n": lambda m, v: m.recommend_arrays(["cy"], n=v),
    "recommend_arrays exclude": lambda m, v: m.recommend_arrays(["cy"], exclude=v),
    "forget": lambda m, v: m.forget(v),
}


@example(which=0, name="fold_in history", value=None)  # TypeError: not iterable
@example(which=1, name="fold_in item", value=[])  # TypeError: unhashable
@example(which=0, name="fold_in history", value={"sku-1": 10**400})  # OverflowError
@example(which=0, name="fold_in history", value={"sku-1": "1"})  # a str taken as a number
@example(which=1, name="recommend_batch", value=frozenset([JOSE_NFD]))  # KeyError: NFD id
@settings(max_examples=settings().max_examples * 10)
@given(which=st.integers(0, 1), name=st.sampled_from(sorted(MODEL_CALLS)), value=hostile)
def test_model_entry_points(models: list[Any], which: int, name: str, value: Any) -> None:
    CASES_RUN["model"] += 1
    _run(None, lambda: MODEL_CALLS[name](models[which], value))


# ---------------------------------------------------------------------- persona.models.load
@pytest.fixture(scope="module")
def hostile_folders(tmp_path_factory: pytest.TempPathFactory,
                    models: list[Any]) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz-load")
    good = root / "good"
    models[0].save(str(good))
    text = root / "text.txt"
    text.write_text("not a model\n")
    empty = root / "empty"
    empty.mkdir()
    bad_manifest = root / "bad-manifest"
    bad_manifest.mkdir()
    for f in good.iterdir():
        (bad_manifest / f.name).write_bytes(f.read_bytes())
    for f in bad_manifest.iterdir():
        if f.suffix == ".json":
            f.write_text('{"format": "\\ud800", "class": [1, 2]')
    torn = root / "torn"
    torn.mkdir()
    for f in good.iterdir():
        data = f.read_bytes()
        (torn / f.name).write_bytes(data[: len(data) // 2] if f.suffix != ".json" else data)
    return {"good": str(good), "text": str(text), "empty": str(empty),
            "bad manifest": str(bad_manifest), "torn": str(torn),
            "missing": str(root / "missing")}


@settings(max_examples=settings().max_examples * 3)
@example(path=None, store_id=None)  # TypeError from pathlib
@example(path=b"good", store_id=None)  # TypeError from pathlib
@example(path=MEGABYTE, store_id=None)  # OSError: file name too long
@example(path="bad manifest", store_id=["x"])
@given(path=st.one_of(st.sampled_from(["good", "text", "empty", "bad manifest", "torn",
                                       "missing"]), hostile),
       store_id=st.one_of(st.none(), hostile))
def test_models_load(hostile_folders: dict[str, str], path: Any, store_id: Any) -> None:
    CASES_RUN["models.load"] += 1
    if isinstance(path, str) and path in hostile_folders:
        path = hostile_folders[path]
    _run(None, lambda: persona.models.load(path, store_id=store_id))


@pytest.fixture(scope="module")
def saved_personalizer(tmp_path_factory: pytest.TempPathFactory,
                       world: tuple[persona.Store, Any]) -> str:
    _, p = world
    folder = tmp_path_factory.mktemp("fuzz-personalizer") / "p"
    p.save(folder)
    return str(folder)


@settings(max_examples=settings().max_examples * 3)
@example(path=MEGABYTE, other_store=False)
@example(path=None, other_store=False)  # TypeError from pathlib
@example(path="ana\x00", other_store=False)  # ValueError: embedded null byte
@given(path=st.one_of(st.sampled_from(["saved", "bad manifest", "torn", "text", "missing"]),
                      hostile),
       other_store=st.booleans())
def test_personalizer_load(world: tuple[persona.Store, Any], saved_personalizer: str,
                           hostile_folders: dict[str, str], path: Any,
                           other_store: bool) -> None:
    store, _ = world
    CASES_RUN["Personalizer.load"] += 1
    if path == "saved":
        path = saved_personalizer
    elif isinstance(path, str) and path in hostile_folders:
        path = hostile_folders[path]
    target = persona.Store(":memory:") if other_store else store
    _run(store, lambda: persona.Personalizer.load(path, target))


# ---------------------------------------------------------------------- constructors
def _inside_tmp(path: Any) -> Any:
    """A store path kept inside the test's folder: a hostile path may create a file."""
    if isinstance(path, str) and path not in ("/dev/null", ":memory:"):
        return "./" + path.replace("..", "__").lstrip("/")
    return path



@pytest.fixture(scope="module")
def open_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-open")
    (folder / "notes.txt").write_text("not a database\n")
    (folder / "a-folder").mkdir()
    return folder


@settings(max_examples=settings().max_examples * 3)
@given(path=st.one_of(st.sampled_from(["notes.txt", "a-folder", "/dev/null", "", ":memory:"]),
                      hostile),
       timeout=st.one_of(st.just(5.0), hostile))
def test_store_open(open_folder: Path, path: Any, timeout: Any) -> None:
    CASES_RUN["Store()"] += 1
    opened: list[persona.Store] = []
    with _inside(open_folder):
        _run(None, lambda: opened.append(persona.Store(_inside_tmp(path), timeout=timeout)))
    for store in opened:
        store.close()


PERSONALIZER_SETTINGS = ("purpose", "privacy", "half_life", "model")


@settings(max_examples=settings().max_examples * 3)
@given(name=st.sampled_from(PERSONALIZER_SETTINGS), value=hostile)
def test_personalizer_settings(world: tuple[persona.Store, Any], name: str,
                               value: Any) -> None:
    store, _ = world
    CASES_RUN["Personalizer()"] += 1
    _run(store, lambda: persona.Personalizer(store, **{name: value}))


# ---------------------------------------------------------------------- the CLI
CLI_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "purpose add name": lambda v: ["purpose", "add", v, "--description", "d"],
    "purpose add description": lambda v: ["purpose", "add", "fz", "--description", v],
    "feature add name": lambda v: ["feature", "add", v, "--purposes", "analytics",
                                   "--category", "c", "--retention-days", "1"],
    "feature add purposes": lambda v: ["feature", "add", "fz", "--purposes", v,
                                       "--category", "c", "--retention-days", "1"],
    "feature add retention": lambda v: ["feature", "add", "fz", "--purposes", "analytics",
                                        "--category", "c", "--retention-days", v],
    "consent user": lambda v: ["consent", v, "analytics", "grant", "--source", "cli"],
    "consent purpose": lambda v: ["consent", "ana", v, "withdraw", "--source", "cli"],
    "consent action": lambda v: ["consent", "ana", "analytics", v, "--source", "cli"],
    "consent source": lambda v: ["consent", "ana", "analytics", "grant", "--source", v],
    "ingest file": lambda v: ["ingest", v],
    "ingest map": lambda v: ["ingest", "events.csv", "--map", v],
    "ingest feature": lambda v: ["ingest", "events.csv", "--feature", v],
    "ingest tz": lambda v: ["ingest", "events.csv", "--tz", v],
    "ingest hostile file": lambda v: ["ingest", "hostile.csv", "--feature", "purchases"],
    "catalogue import file": lambda v: ["catalogue", "import", v],
    "catalogue import column": lambda v: ["catalogue", "import", "items.csv",
                                          "--item-column", v],
    "catalogue show": lambda v: ["catalogue", "show"],
    "train out": lambda v: ["train", "--out", v, "--model", "popularity"],
    "train purpose": lambda v: ["train", "--out", "m2", "--model", "popularity",
                                "--purpose", v],
    "train factors": lambda v: ["train", "--out", "m2", "--model", "als", "--factors", v,
                                "--iterations", "1"],
    "train iterations": lambda v: ["train", "--out", "m2", "--model", "als", "--factors", "2",
                                   "--iterations", v],
    "train epsilon": lambda v: ["train", "--out", "m2", "--epsilon", v],
    "train delta": lambda v: ["train", "--out", "m2", "--epsilon", "1", "--delta", v],
    "budget set epsilon": lambda v: ["budget", "set", "--purpose", "personalization",
                                     "--epsilon", v, "--delta", "1e-6"],
    "budget set period": lambda v: ["budget", "set", "--purpose", "personalization",
                                    "--epsilon", "1", "--delta", "1e-6", "--period-days", v],
    "budget show purpose": lambda v: ["budget", "show", "--purpose", v],
    "recommend user": lambda v: ["recommend", v, "--model", "m"],
    "recommend model": lambda v: ["recommend", "ana", "--model", v],
    "recommend n": lambda v: ["recommend", "ana", "--model", "m", "-n", v],
    "explain user": lambda v: ["explain", v, "sku-1", "--model", "m"],
    "explain item": lambda v: ["explain", "ana", v, "--model", "m"],
    "report out": lambda v: ["report", "--model", "m", "--out", v],
    "report user": lambda v: ["report", "--model", "m", "--out", "r", "--user", v],
    "export user": lambda v: ["export", v],
    "export out": lambda v: ["export", "ana", "--out", v],
    "erase user": lambda v: ["erase", v, "--yes"],
    "consent import file": lambda v: ["consent", "import", v, "--source", "f"],
    "consent import map": lambda v: ["consent", "import", "consent.csv", "--map", v],
    "consent import source": lambda v: ["consent", "import", "consent.csv", "--source", v],
    "audit verify anchor": lambda v: ["audit", "verify", "--anchor", v],
    "curate pin": lambda v: ["curate", "set", "--model", "m", "--pin", v, "--reason", "r"],
    "curate block": lambda v: ["curate", "set", "--model", "m", "--block", v, "--reason",
                               "r"],
    "curate reason": lambda v: ["curate", "set", "--model", "m", "--block", "sku-2",
                                "--reason", v],
    "curate show model": lambda v: ["curate", "show", "--model", v],
    "evaluate k": lambda v: ["evaluate", "--model", "popularity", "--k", v],
    "evaluate test-from": lambda v: ["evaluate", "--model", "popularity", "--test-from", v],
    "evaluate purpose": lambda v: ["evaluate", "--model", "popularity", "--purpose", v],
    "retention": lambda v: ["retention", v],
    "store": lambda v: ["--store", _inside_tmp(v), "catalogue", "show"],
    "unknown command": lambda v: [v],
}


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-cli")
    store = shop(str(folder / "cli.db"))
    for u in ("ana", "bo", "cy"):
        store.grant(u, "personalization", source="form")
    store.close()
    (folder / "events.csv").write_text(
        "user,item,feature,value,at\n"
        "ana,sku-1,purchases,1,2026-11-01T10:00:00Z\nbo,sku-2,purchases,2,2026-11-01T10:00:00Z\n"
        "cy,sku-1,purchases,1,2026-11-01T10:00:00Z\n")
    (folder / "hostile.csv").write_bytes(
        b"\xef\xbb\xbfuser,item,at\nana\x00,sku-1,2026-11-01T10:00:00Z\n\xff\xfe,x,nan\n")
    (folder / "items.csv").write_text("item,title\nsku-1,Stove\nsku-2,Pan\n")
    (folder / "consent.csv").write_text("user,purpose,action\nana,personalization,grant\n")
    with _inside(folder):
        code, _, err = _cli(["--store", "cli.db", "ingest", "events.csv"])
        assert code == 0, err
        code, _, err = _cli(["--store", "cli.db", "train", "--out", "m", "--model",
                             "popularity"])
        assert code == 0, err
    return folder


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse: usage mistakes and --help
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@example(name="store", value="ana\x00")  # ValueError: embedded null byte
@example(name="ingest hostile file", value="")
@example(name="evaluate test-from", value="0001-01-01T00:00:00+01:00")  # OverflowError
@settings(max_examples=settings().max_examples * 10)
@given(name=st.sampled_from(sorted(CLI_COMMANDS)), value=hostile_arg)
def test_cli_commands(cli_folder: Path, name: str, value: str) -> None:
    CASES_RUN["cli"] += 1
    argv = CLI_COMMANDS[name](value)
    if name != "store":
        argv = ["--store", "cli.db", *argv]
    with _inside(cli_folder):
        code, _, err = _cli(argv)
    assert code in (0, 1, 2), (argv[:6], code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    if code:
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0], (argv[:6], err[-2000:])


_field = st.one_of(st.sampled_from([s for s in SPECIAL_TEXT if len(s) < 100]),
                   st.text(max_size=8))


@st.composite
def _hostile_file(draw: st.DrawFn) -> bytes:
    """A CSV or JSON-lines file with hostile rows, or arbitrary bytes."""
    kind = draw(st.sampled_from(["bytes", "csv", "jsonl"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    rows = draw(st.lists(st.fixed_dictionaries(
        {"user": _field, "item": _field, "feature": _field, "value": _field, "at": _field}),
        max_size=3))
    if kind == "csv":
        head = draw(st.sampled_from(["user,item,feature,value,at", "\ufeffuser,item,at",
                                     "user,user,item", ""]))
        lines = [head] + [",".join(r.values()) for r in rows]
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    import json
    return "\n".join(json.dumps(r) for r in rows).encode("utf-8", "surrogatepass")


@example(content=b"1\n", command="ingest", fmt="jsonl")  # AttributeError: no .get
@example(content=b"[1]\n", command="catalogue", fmt="jsonl")  # TypeError
@settings(max_examples=settings().max_examples * 3)
@given(content=_hostile_file(), command=st.sampled_from(["ingest", "catalogue", "consent"]),
       fmt=st.sampled_from(["auto", "csv", "jsonl"]))
def test_cli_hostile_files(cli_folder: Path, content: bytes, command: str, fmt: str) -> None:
    CASES_RUN["cli files"] += 1
    with _inside(cli_folder):
        Path("fuzz-input.csv").write_bytes(content)
        argv = ["--store", "cli.db", *{
            "ingest": ["ingest", "fuzz-input.csv", "--tz", "UTC"],
            "catalogue": ["catalogue", "import", "fuzz-input.csv"],
            "consent": ["consent", "import", "fuzz-input.csv", "--source", "fuzz"],
        }[command], "--format", fmt]
        code, _, err = _cli(argv)
    assert code in (0, 1, 2), (argv, code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    if code:
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0], (argv, err[-2000:])


# ---------------------------------------------------------------------- the count
def test_case_count() -> None:
    """Report how many hostile cases the suite ran (``-s`` shows it)."""
    total = sum(CASES_RUN.values())
    print(f"\nfuzz cases run: {total} ({dict(sorted(CASES_RUN.items()))})")
    if len(CASES_RUN) == 9:  # the whole module ran, not a single test
        assert total >= 9 * settings().max_examples
