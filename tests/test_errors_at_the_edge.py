"""Every error a caller can cause is a PersonaError with a code and a fix, and a refused
call leaves the store unchanged (issue 17, point 10).

One table: each case is a call with a hostile or loosely typed value that, on persona before
this change (cb8442d), raised a raw exception (``UnicodeEncodeError``, ``TypeError``, a bare
pydantic error) or silently converted it (a str of five letters pinned as five items).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persona
from persona.errors import PersonaError
from store_helpers import Clock, event, shop

SURROGATE = "ana\ud800"


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    store = shop(clock=Clock())
    for u, items in (("ana", ["sku-1", "sku-2"]), ("bo", ["sku-2", "sku-3"]),
                     ("cy", ["sku-1", "sku-3"])):
        store.grant(u, "personalization", source="form")
        store.ingest([event(user=u, item=i) for i in items])
    p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    return {"store": store, "p": p}


def _frame_with_a_duplicated_column() -> Any:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame([["u9", "sku-1", "purchases", "2026-11-01T10:00:00Z", "u8"]],
                      columns=["user", "item", "feature", "at", "user"])
    return df


def _dp(**kw: Any) -> Any:
    return persona.DP(**kw)


# (name, call(store, personalizer)) — every call must raise a PersonaError
CASES: list[tuple[str, Callable[[Any, Any], Any]]] = [
    # lone surrogates in ids
    ("grant surrogate", lambda s, p: s.grant(SURROGATE, "personalization", source="f")),
    ("withdraw surrogate", lambda s, p: s.withdraw(SURROGATE, "personalization")),
    ("erase surrogate", lambda s, p: s.erase(SURROGATE)),
    ("export surrogate", lambda s, p: s.export(SURROGATE)),
    ("feedback surrogate", lambda s, p: s.feedback(SURROGATE, "sku-1", "not_interested")),
    ("feedback item surrogate", lambda s, p: s.feedback("ana", "sku\udc80", "dont_use")),
    ("recommend surrogate", lambda s, p: p.recommend(SURROGATE)),
    ("personalizer feedback surrogate",
     lambda s, p: p.feedback(SURROGATE, "sku-1", "not_interested")),
    ("forget surrogate", lambda s, p: p.forget(SURROGATE)),
    # notice versions
    ("notice_version int",
     lambda s, p: s.grant("ana", "personalization", source="f", notice_version=3)),
    ("notice_version list",
     lambda s, p: s.grant("ana", "personalization", source="f", notice_version=["x"])),
    # None where a container belongs
    ("ingest None", lambda s, p: s.ingest(None)),
    ("define_feature purposes None",
     lambda s, p: s.define_feature("f2", purposes=None, category="c", retention_days=1)),
    ("recommend_batch None", lambda s, p: p.recommend_batch(None)),
    ("curate pin None", lambda s, p: p.curate(pin=None, reason="r")),
    ("curate block None", lambda s, p: p.curate(block=None, reason="r")),
    # the Personalizer's own settings
    ("Personalizer(None)", lambda s, p: persona.Personalizer(None)),
    ("Personalizer half_life -1", lambda s, p: persona.Personalizer(s, half_life=-1)),
    ("Personalizer privacy 'yes'", lambda s, p: persona.Personalizer(s, privacy="yes")),
    # DP settings
    ("DP epsilon -1", lambda s, p: _dp(epsilon=-1)),
    ("DP epsilon nan", lambda s, p: _dp(epsilon=math.nan)),
    # a DataFrame with a duplicated column; a Store with a timeout that is not a number
    ("ingest duplicated column", lambda s, p: s.ingest(_frame_with_a_duplicated_column())),
    ("Store timeout nan", lambda s, p: persona.Store(":memory:", timeout=math.nan)),
    ("Store timeout str", lambda s, p: persona.Store(":memory:", timeout="5")),
    # loose conversions
    ("curate pin str", lambda s, p: p.curate(pin="stove", reason="r")),
    ("recommend_batch str", lambda s, p: p.recommend_batch("ana")),
    ("retention_days True",
     lambda s, p: s.define_feature("f2", purposes=["personalization"], category="c",
                                   retention_days=True)),
    ("retention_days '30'",
     lambda s, p: s.define_feature("f2", purposes=["personalization"], category="c",
                                   retention_days="30")),
    ("sharing 'yes'", lambda s, p: s.define_purpose("p2", description="d", sharing="yes")),
    ("purposes bytes",
     lambda s, p: s.define_feature("f2", purposes=[b"personalization"], category="c",
                                   retention_days=1)),
    # a purpose that is not a name
    ("has_consent purpose list", lambda s, p: s.has_consent("ana", ["personalization"])),
    ("scope purpose list", lambda s, p: s.scope(["personalization"])),
    ("grant purpose None", lambda s, p: s.grant("ana", None, source="f")),
    # the models' own batch entry points
    ("model recommend_batch str", lambda s, p: p.model_.recommend_batch("ana")),
    ("model recommend_batch None", lambda s, p: p.model_.recommend_batch(None)),
    ("model recommend_arrays str", lambda s, p: p.model_.recommend_arrays("ana")),
    ("model exclude str", lambda s, p: p.model_.recommend("ana", exclude="sku-1")),
    ("model fold_in surrogate", lambda s, p: p.model_.fold_in("x\udc80", ["sku-1"])),
    ("purposes str",
     lambda s, p: s.define_feature("f2", purposes="personalization", category="c",
                                   retention_days=1)),
    # the serving state shared by workers (issue 21)
    ("set_curation pin str", lambda s, p: s.set_curation("personalization", pin="stove",
                                                          reason="r")),
    ("set_curation position True",
     lambda s, p: s.set_curation("personalization", pin={"sku-1": True}, reason="r")),
    ("set_curation purpose list",
     lambda s, p: s.set_curation(["personalization"], block=["sku-1"], reason="r")),
    ("set_live_model unknown",
     lambda s, p: s.set_live_model("personalization", "0123456789abcdef")),
    ("set_live_model int", lambda s, p: s.set_live_model("personalization", 7)),
    ("publish_model sha256 None",
     lambda s, p: s.publish_model("personalization", version="v", folder="m", sha256=None,
                                  model_class="ALS")),
    ("publish folder int", lambda s, p: p.publish(3)),
    ("publish_model version surrogate",
     lambda s, p: s.publish_model("personalization", version=SURROGATE, folder="m",
                                  sha256="ab", model_class="ALS")),
    ("set_live_model version surrogate",
     lambda s, p: s.set_live_model("personalization", SURROGATE)),
    ("refresh_every True", lambda s, p: persona.Personalizer(s, refresh_every=True)),
    ("refresh_every -1", lambda s, p: persona.Personalizer(s, refresh_every=-1)),
    ("refresh_every '5'", lambda s, p: persona.Personalizer(s, refresh_every="5")),
    ("live refresh_every nan",
     lambda s, p: persona.Personalizer.live(s, refresh_every=math.nan)),
]


def _state(store: Any) -> tuple[Any, ...]:
    """What the store holds, read through the API, and the audit log's head after the
    reads (reads are audited too: a refused call must add nothing after them)."""
    stats = {k: v for k, v in store.stats().items() if k != "audit_entries"}  # reads add
    seen = (stats, sorted(store.purposes), sorted(store.features),
            store.consented("personalization"),
            [store.consent_history(u) for u in ("ana", "bo", "cy")],
            [len(store.scope("personalization").history(u)) for u in ("ana", "bo", "cy")])
    return store.audit.head(), seen


def _unchanged(store: Any, before: tuple[Any, ...]) -> bool:
    head = store.audit.head()
    return head == before[0] and _state(store)[1] == before[1]


@pytest.mark.parametrize(("name", "call"), CASES, ids=[c[0] for c in CASES])
def test_a_hostile_value_gets_a_persona_error_and_changes_nothing(
    world: dict[str, Any], name: str, call: Callable[[Any, Any], Any]
) -> None:
    store, p = world["store"], world["p"]
    before = _state(store)
    curation = p.curation
    with pytest.raises(PersonaError) as info:
        call(store, p)
    err = info.value
    assert err.code and err.code != "persona_error", name
    assert len(str(err)) > 20, name  # a message that says what to do
    assert _unchanged(store, before), name
    assert p.curation == curation, name


def test_the_purposes_str_message_names_the_list_not_a_letter(world: dict[str, Any]) -> None:
    with pytest.raises(PersonaError) as info:
        world["store"].define_feature("f2", purposes="personalization", category="c",
                                      retention_days=1)
    assert "'p'" not in str(info.value) and "list" in str(info.value)


def test_dp_errors_are_persona_validation_errors_and_dp_stays_a_pydantic_model() -> None:
    import pydantic

    from persona.errors import ValidationError

    with pytest.raises(ValidationError, match="epsilon"):
        persona.DP(epsilon=-1)
    assert isinstance(persona.DP(epsilon=1.0), pydantic.BaseModel)
    assert persona.DP.model_validate({"epsilon": 2.0}).epsilon == 2.0
    with pytest.raises(ValidationError):
        persona.DP.model_validate({"epsilon": "nan"})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.one_of(st.text(max_size=8), st.binary(max_size=4), st.none(), st.integers(),
                      st.lists(st.text(max_size=2), max_size=2)))
def test_only_persona_errors_escape_the_id_edge(world: dict[str, Any], user: Any) -> None:
    """Any value as a person's id: the call works or raises a PersonaError, never a raw one
    (reads only, so the shared store is left as it was)."""
    store, p = world["store"], world["p"]
    for call in (store.export, store.consent_history, store.has_consent, p.recommend,
                 p.model_.recommend, store.pseudonym, store.feedback_of):
        try:
            if call == store.has_consent:
                call(user, "personalization")
            else:
                call(user)
        except PersonaError:
            pass


@pytest.mark.parametrize(("make", "field"), [
    (lambda: persona.ALS(factors="8"), "factors"),  # type: ignore[arg-type]
    (lambda: persona.ALS(regularization="0.1"), "regularization"),  # type: ignore[arg-type]
    (lambda: persona.BPR(learning_rate="0.05"), "learning_rate"),  # type: ignore[arg-type]
    (lambda: persona.ItemKNN(neighbours="10"), "neighbours"),  # type: ignore[arg-type]
    (lambda: persona.ItemKNN(head="10"), "head"),  # type: ignore[arg-type]
    (lambda: persona.ContentKNN(item_text={"a": "x"}, collaborative="1"), "collaborative"),  # type: ignore[arg-type]
])
def test_a_str_is_no_number_for_a_model_parameter(make: Callable[[], Any], field: str) -> None:
    """pydantic's lax mode turned "8" into 8 (found with ItemKNN(head=...)): no string is
    taken as a number at the edge."""
    from persona.testing import block_interactions

    with pytest.raises(persona.ValidationError, match="is a str, not a number") as info:
        make().fit(block_interactions())
    assert info.value.errors[0]["field"] == field
