"""The collector hold restores the state it found, across nesting and threads."""

from __future__ import annotations

import gc
import threading

import pytest

from persona._gc import no_gc_pauses


@pytest.fixture(autouse=True)
def _restore_gc():
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_hold_disables_and_restores() -> None:
    gc.enable()
    with no_gc_pauses():
        assert not gc.isenabled()
        with no_gc_pauses():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer hold still runs
    assert gc.isenabled()


def test_hold_keeps_a_callers_disabled_collector_disabled() -> None:
    gc.disable()
    with no_gc_pauses():
        pass
    assert not gc.isenabled()


def test_hold_restores_on_error() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), no_gc_pauses():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_holds_in_threads_end_with_the_collector_on() -> None:
    gc.enable()
    inside = threading.Barrier(2)
    release = threading.Event()
    seen: list[bool] = []

    def hold() -> None:
        with no_gc_pauses():
            inside.wait()
            release.wait()
            seen.append(gc.isenabled())

    first = threading.Thread(target=hold)
    first.start()
    with no_gc_pauses():
        inside.wait()
        release.set()
        first.join()
        # the other thread's hold ended first; this one still holds
        assert not gc.isenabled()
    assert seen == [False]
    assert gc.isenabled()
