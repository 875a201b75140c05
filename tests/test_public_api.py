"""The public surface: every name in ``persona.__all__`` resolves."""

from __future__ import annotations

import pytest

import persona


def test_every_exported_name_resolves() -> None:
    for name in persona.__all__:
        assert getattr(persona, name) is not None, name


def test_errors_share_one_base() -> None:
    for name in persona.__all__:
        obj = getattr(persona, name)
        if isinstance(obj, type) and name.endswith(("Error", "Exceeded")):
            assert issubclass(obj, persona.PersonaError), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        persona.NoSuchThing  # noqa: B018
