"""Job ids that tell a typo from a job of another run of the fake.

Every id carries 16 bytes: 12 random (drawn from the state's seeded generator, so ``--seed``
reproduces them), a 2-byte *tag* of the simulation state that issued it, and a 2-byte checksum of
the rest. Dialects only format and parse those bytes in their provider's shape (``img_`` + 26
base-32 characters, a UUID). When an id is unknown, :func:`diagnose` says why:

* the checksum fails — not an id any wanmock issued (mistyped, or made up);
* the tag is another state's — issued by an earlier run of the fake (in-memory state does not
  survive a restart) or by another server;
* otherwise — this state issued it and then forgot it (evicted after expiry, or reset).

>>> import random
>>> raw = new_id(random.Random(1), tag=b"ab")
>>> diagnose(raw, tag=b"ab"), diagnose(raw, tag=b"zz")
('forgotten', 'other-run')
>>> diagnose(bytes([raw[0] ^ 1]) + raw[1:], tag=b"ab")
'unknown'
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from typing import Literal

__all__ = ["UUID_PATTERN", "Diagnosis", "diagnose", "new_id", "new_uuid", "tag_of", "uuid_bytes"]

Diagnosis = Literal["unknown", "other-run", "forgotten"]


def _check(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=2, person=b"wanmock-id").digest()


def tag_of(identity: str) -> bytes:
    """The 2-byte tag of a state identity (any string that names one simulation state)."""
    return hashlib.blake2b(identity.encode(), digest_size=2).digest()


def new_id(rng: random.Random, *, tag: bytes, fixed: tuple[tuple[int, int, int], ...] = ()
           ) -> bytes:
    """16 id bytes: 12 random, the tag, a checksum. ``fixed`` sets bits a format needs
    (``(byte, mask, value)``, e.g. a UUID's version nibble) before the checksum is taken."""
    body = bytearray(rng.randbytes(12) + tag)
    for index, mask, value in fixed:
        body[index] = (body[index] & ~mask) | value
    return bytes(body) + _check(bytes(body))


def diagnose(raw: bytes, *, tag: bytes) -> Diagnosis:
    """Why an id that names no job is unknown (see the module docstring)."""
    if len(raw) != 16 or _check(raw[:14]) != raw[14:]:
        return "unknown"
    return "forgotten" if raw[12:14] == tag else "other-run"


#: A UUID as the providers that use them write it (lower case, hyphenated).
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_UUID4 = ((6, 0xF0, 0x40), (8, 0xC0, 0x80))


def new_uuid(rng: random.Random, *, tag: bytes) -> str:
    """An id in a UUID v4's shape (version and variant bits set), with the tag and checksum."""
    return str(uuid.UUID(bytes=new_id(rng, tag=tag, fixed=_UUID4)))


def uuid_bytes(text: str) -> bytes | None:
    """The 16 bytes of a lower-case hyphenated UUID, or ``None`` if ``text`` is not one."""
    return uuid.UUID(text).bytes if UUID_PATTERN.match(text) else None

