"""One identity rule for ids everywhere (issue 17, points 3 and 12).

An id is a non-blank str of at most 512 characters, without control characters or lone
surrogates, compared in Unicode NFC; saved model files keep ids exactly.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import persona
from persona.data import Interactions
from persona.errors import ModelFileError, ValidationError
from persona.models import ALS, ItemKNN, Popularity
from store_helpers import Clock, event, file_rows, fingerprint, shop

NFC = unicodedata.normalize("NFC", "José")
NFD = unicodedata.normalize("NFD", "José")


def check_id(value: object, field: str) -> str:
    from persona.schema import check_id  # imported here: the old code (cb8442d) lacks it

    return check_id(value, field)


def test_nfc_and_nfd_are_two_spellings() -> None:
    assert NFC != NFD and check_id(NFD, "user") == NFC == check_id(NFC, "user")


# ------------------------------------------------------------------ the rule itself
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ana\x00", "control character"),
        ("ana\n", "control character"),
        ("\x7f", "control character"),
        ("a\x85b", "control character"),
        ("ana\ud800", "lone surrogate"),
        ("", "empty or blank"),
        ("   ", "empty or blank"),
        ("x" * 513, "longer than 512"),
        (b"ana", "not a str"),
        (3.0, "a float"),  # issue 22: an int is an id (its decimal string), a float not
        (True, "a bool"),
        (None, "not a str"),
        (["ana"], "not a str"),
    ],
)
def test_the_rule_refuses_with_a_message_naming_it(value: object, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as info:
        check_id(value, "user")
    assert info.value.code == "validation_error"
    assert "field 'user'" in str(info.value) and "NFC" in str(info.value)


@given(st.text(min_size=1, max_size=40))
def test_an_accepted_id_is_nfc_and_stable(text: str) -> None:
    try:
        out = check_id(text, "user")
    except ValidationError:
        return
    assert unicodedata.is_normalized("NFC", out)
    assert check_id(out, "user") == out
    assert out == unicodedata.normalize("NFC", text)


# ------------------------------------------------------------------ the store (point 12)
def test_erase_in_nfc_erases_what_was_granted_and_ingested_in_nfd(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    store.grant(NFD, "personalization", source="form")
    store.ingest([event(user=NFD)])
    assert store.has_consent(NFC, "personalization")
    assert len(store.scope("personalization").history(NFC)) == 1
    store.erase(NFC)
    assert not store.has_consent(NFD, "personalization")
    assert len(store.scope("personalization").history(NFD)) == 0
    assert store.consent_history(NFD) == []
    rows = file_rows(store, "SELECT ext FROM subjects")
    assert rows == []


def test_both_spellings_are_one_person_everywhere_in_the_store(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    store.grant(NFC, "personalization", source="form")
    store.ingest([event(user=NFD, item="sku-1"), event(user=NFC, item="sku-2")])
    a, b = store.export(NFD), store.export(NFC)  # each export is itself audited
    assert {k: v for k, v in a.items() if "audit" not in k} == {
        k: v for k, v in b.items() if "audit" not in k}
    assert len(a["events"]) == 2
    assert store.pseudonym(NFD) == store.pseudonym(NFC)
    assert store.consented("personalization") == {NFC}
    assert [r[0] for r in file_rows(store, "SELECT ext FROM subjects")] == [NFC]
    store.define_items([unicodedata.normalize("NFD", "Crème")])
    assert store.catalogue() == [unicodedata.normalize("NFC", "Crème")]


@pytest.mark.parametrize("bad", ["ana\x00", "ana\ud800", "a\nb"])
def test_the_store_refuses_what_no_id_can_be_and_writes_nothing(bad: str) -> None:
    store = shop(clock=Clock())
    store.grant("ana", "personalization", source="form")
    before = fingerprint(store)
    with pytest.raises(ValidationError, match="not a valid id"):
        store.grant(bad, "personalization", source="form")
    with pytest.raises(ValidationError, match="field 'user'"):
        store.ingest([event(user=bad)])
    with pytest.raises(ValidationError, match="field 'item'"):
        store.ingest([event(item=bad)])
    for call in (store.withdraw, store.export, store.erase, store.consent_history,
                 store.feedback_of, store.pseudonym):
        with pytest.raises(ValidationError, match="not a valid id"):
            call(bad, "personalization") if call == store.withdraw else call(bad)
    assert fingerprint(store) == before
    report = store.ingest([event(user=bad), event(user="ana")], on_invalid="skip")
    assert report.inserted == 1 and report.rejected == 1


# ------------------------------------------------------------------ models (point 3)
def _interactions(users: list[str]) -> Interactions:
    m = sp.csr_matrix(np.array([[1.0, 0, 1], [0, 1, 1]][: len(users)]))
    return Interactions.from_csr(m, users, ["a", "b", "c"])


def test_an_id_with_a_control_character_is_refused_when_the_data_is_built() -> None:
    with pytest.raises(ValidationError, match="control character"):
        _interactions(["ana", "ana\x00"])
    with pytest.raises(ValidationError, match="unique"):
        _interactions([NFC, NFD])


@pytest.mark.parametrize("cls", [ALS, ItemKNN, Popularity])
def test_saved_ids_round_trip_exactly(cls: type, tmp_path: Path) -> None:
    users = ["ana", "ana ", "Zoë 🙂", "\u200dx", "a\u0301" * 3]
    X = Interactions.from_csr(sp.random(5, 4, density=0.6, format="csr", random_state=1) + 0,
                              users, ["sku", "sku ", "Crème", "ß"])
    model = cls().fit(X) if cls is not ALS else ALS(factors=2, iterations=2).fit(X)
    same = cls.load(model.save(tmp_path / "m"))
    assert [type(u) for u in same.users_] == [str] * 5
    assert same.users_.tolist() == model.users_.tolist()
    assert same.items_.tolist() == model.items_.tolist()
    raw = np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False)
    assert all(raw[k].dtype.kind != "U" for k in raw.files)  # no fixed-width str arrays


def _as_version_2(path: Path, users: list[str]) -> None:
    """Rewrite a saved model as the version-2 layout (``<U`` id arrays), checksums too."""
    import hashlib

    from persona.models._persistence import manifest_checksum

    arrays = dict(np.load(path / "arrays.npz", allow_pickle=False))
    manifest = json.loads((path / "manifest.json").read_text())
    items = arrays["items_utf8"].tobytes().decode()
    del arrays["users_utf8"], arrays["users_ends"], arrays["items_utf8"], arrays["items_ends"]
    for k in ("users_utf8", "users_ends", "items_utf8", "items_ends"):
        del manifest["arrays"][k]
    arrays["users"] = np.array(users, dtype=str)
    arrays["items"] = np.array(list(items), dtype=str)
    for k in ("users", "items"):
        manifest["arrays"][k] = {"dtype": arrays[k].dtype.str, "shape": [len(arrays[k])]}
    np.savez(path / "arrays.npz", **arrays)
    manifest["format_version"] = 2
    manifest["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    manifest["sha256"] = manifest_checksum(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_version_2_file_loads_when_its_ids_are_exact(tmp_path: Path) -> None:
    model = ItemKNN().fit(Interactions.from_csr(
        sp.csr_matrix(np.eye(2, 3)), ["ana", "bo"], ["a", "b", "c"]))
    path = model.save(tmp_path / "m")
    _as_version_2(path, ["ana", "bo"])
    assert ItemKNN.load(path).users_.tolist() == ["ana", "bo"]


def test_a_version_2_file_whose_ids_collapsed_is_refused(tmp_path: Path) -> None:
    """Format 2 wrote "ana" and "ana\\x00" as one fixed-width string: such a file is
    refused instead of serving one person the other's history."""
    model = ItemKNN().fit(Interactions.from_csr(
        sp.csr_matrix(np.eye(2, 3)), ["ana", "bo"], ["a", "b", "c"]))
    path = model.save(tmp_path / "m")
    _as_version_2(path, ["ana", "ana\x00"])  # as old persona wrote it: two people, one id
    with pytest.raises(ModelFileError, match="two users have one id"):
        ItemKNN.load(path)


def test_models_apply_the_rule_to_people_and_items() -> None:
    model = ItemKNN().fit(_interactions([NFC, "bo"]))
    assert model.recommend(NFD, n=1) == model.recommend(NFC, n=1)
    assert model.score(NFD, ["a"]).tolist() == model.score(NFC, ["a"]).tolist()
    with pytest.raises(ValidationError, match="control character"):
        model.recommend("bo\x00")
    with pytest.raises(ValidationError, match="lone surrogate"):
        model.fold_in("x\udc80", ["a"])
    with pytest.raises(ValidationError, match="lone surrogate"):
        Popularity().fit(_interactions(["a", "b"])).recommend("x\udc80")
    knn = ItemKNN().fit(Interactions.from_csr(sp.csr_matrix(np.eye(2)), ["a", "b"],
                                              [NFC, "x"]))
    assert knn.fold_in("c", [NFD]).history_[2].indices.tolist() == [0]  # NFD item, found
    with pytest.raises(ValidationError, match="control character"):
        knn.fold_in("d", ["x\x00"])
    model.fold_in(unicodedata.normalize("NFD", "Zoë"), ["a"])
    assert "Zoë" in set(model.users_.tolist())
    model.forget(NFD)
    assert NFC not in set(model.users_.tolist())


def test_the_personalizer_serves_and_forgets_one_person_under_both_spellings() -> None:
    store = shop(clock=Clock())
    for u, items in ((NFC, ["sku-1", "sku-2"]), ("bo", ["sku-2", "sku-3"]),
                     ("cy", ["sku-1", "sku-3"])):
        store.grant(u, "personalization", source="form")
        store.ingest([event(user=u, item=i) for i in items])
    p = persona.Personalizer(store, model=ItemKNN()).fit()
    a, b = p.recommend(NFD, n=2), p.recommend(NFC, n=2)
    assert [(r.item, r.score) for r in a] == [(r.item, r.score) for r in b] and len(a) == 1
    assert a[0].explanation.reasons == b[0].explanation.reasons
    p.forget(NFD)
    assert NFC not in set(p.model_.users_.tolist())
    assert not store.has_consent(NFC, "personalization")
    with pytest.raises(ValidationError, match="lone surrogate"):
        p.recommend("x\ud800")
