"""The pseudonym key of a store: given, kept in the file, or held outside it (only its
fingerprint in the file)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from persona.errors import StoreError, ValidationError

__all__ = ["key_check", "open_key", "pseudonym_key"]

_KEY_CHECK_LABEL = b"persona pseudonym key check, v1"
_KEY_FIELD = [{"row": None, "field": "pseudonym_key", "message": "invalid"}]


def pseudonym_key(value: object) -> bytes | None:
    """``Store(pseudonym_key=...)`` as bytes: 32 bytes or more, or their hex string."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        key = bytes(value)
    elif isinstance(value, str):
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise ValidationError(
                "pseudonym_key given as a str must be hex digits (e.g. secrets.token_hex(32)); "
                "pass bytes or a hex string of 32 bytes or more",
                errors=_KEY_FIELD,
            ) from None
    else:
        raise ValidationError(
            f"pseudonym_key must be bytes or a hex str, not {type(value).__name__}; "
            "make one with secrets.token_bytes(32) and keep it outside the store file",
            errors=_KEY_FIELD,
        )
    if len(key) < 32:
        raise ValidationError(
            f"pseudonym_key has {len(key)} bytes; give 32 bytes or more "
            "(secrets.token_bytes(32))",
            errors=_KEY_FIELD,
        )
    return key


def key_check(key: bytes) -> str:
    """What the file keeps of a key held outside it: a keyed hash of a fixed label, which
    tells a wrong key from the right one and reveals nothing of either."""
    return hmac.new(key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest()


def open_key(meta: Mapping[str, str], given: bytes | None, path: str) -> bytes:
    """The pseudonym key of a store: from the file, or the one given, checked."""
    stored = meta.get("pseudonym_key")
    if stored is not None:
        key = bytes.fromhex(stored)
        if given is not None and not hmac.compare_digest(given, key):
            raise StoreError(
                f"the pseudonym_key given does not match the key kept in the store file "
                f"{path!r}; open it without pseudonym_key (its key is in the file)"
            )
        return key
    check = meta.get("pseudonym_key_check")
    if check is None:
        raise StoreError(
            f"the store file {path!r} has no pseudonym key and no key fingerprint: it is "
            "damaged; restore it from a backup"
        )
    if given is None:
        raise StoreError(
            f"the store file {path!r} keeps its pseudonym key outside the file; pass it as "
            "persona.Store(path, pseudonym_key=...)"
        )
    if not hmac.compare_digest(key_check(given), check):
        raise StoreError(
            f"the pseudonym_key given does not match the one the store file {path!r} was "
            "created with; pass the key it was created with"
        )
    return given
