"""Files sealed at rest: AES-256-GCM in 64 KiB segments, written and read as streams.

An answer file (a copy of a person's data, GDPR Art. 15(3)) is never on disk
in clear and never whole in memory. The file is cut into segments of
SEGMENT bytes; each is sealed on its own with a fresh random 96-bit nonce
(NIST SP 800-38D §8.2.2) under a key derived for this file alone (HKDF,
RFC 5869, from POLICY_FILES_KEY and a random salt in the file's header).
Each segment's associated data names the file, the segment's index and
whether it is the last one, so segments cannot be reordered, swapped
between files, dropped or cut off at the end without the tag failing.

Layout: MAGIC, 16-byte salt, then segments of [12-byte nonce][ciphertext+16-byte tag].
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"POAF\x01"
SEGMENT = 64 * 1024
_SALT, _NONCE, _TAG = 16, 12, 16
_SEALED_SEGMENT = _NONCE + SEGMENT + _TAG


class SealedFileError(Exception):
    """Raised when a sealed file cannot be opened: altered, cut short, or of another key."""


class TooLarge(Exception):
    """Raised when the clear text grows past the limit while it is being sealed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Sealed:
    size: int  # bytes of clear text
    sha256: str  # of the clear text, so the customer can check what they received


def _file_key(key: bytes, salt: bytes, name: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                   info=b"answer-file:" + name.encode()).derive(key)
    return AESGCM(derived)


def _aad(name: str, index: int, last: bool) -> bytes:
    return MAGIC + name.encode() + b"\x00" + struct.pack(">QB", index, int(last))


class Sealer:
    """Seals chunks of any size as they come (an upload's parts), SEGMENT bytes at a time."""

    def __init__(self, key: bytes, name: str, out: BinaryIO, limit: int | None = None) -> None:
        salt = os.urandom(_SALT)
        self._aead = _file_key(key, salt, name)
        self._name = name
        self._out = out
        self._limit = limit
        self._buffer = bytearray()
        self._index = 0
        self._size = 0
        self._digest = hashlib.sha256()
        out.write(MAGIC + salt)

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            raise TooLarge(self._limit)
        self._digest.update(data)
        self._buffer += data
        # Keep at least one byte back: the last segment is sealed as the last (close()).
        while len(self._buffer) > SEGMENT:
            self._seal(bytes(self._buffer[:SEGMENT]), last=False)
            del self._buffer[:SEGMENT]

    def close(self) -> Sealed:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return Sealed(self._size, self._digest.hexdigest())

    def _seal(self, segment: bytes, *, last: bool) -> None:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, segment, _aad(self._name, self._index, last))
        self._out.write(nonce + sealed)
        self._index += 1


def seal_stream(key: bytes, name: str, chunks: Iterable[bytes], out: BinaryIO,
                limit: int | None = None) -> Sealed:
    sealer = Sealer(key, name, out, limit)
    for chunk in chunks:
        sealer.write(chunk)
    return sealer.close()


def read_chunks(path: Path, size: int = SEGMENT) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(size):
            yield chunk


def open_sealed(key: bytes, name: str, path: Path) -> Iterator[bytes]:
    """The clear text of a sealed file, segment by segment; SealedFileError on any change.

    A reader that stops early sees only authenticated bytes; a caller that must
    not send a byte of an altered file calls check() first (answer_files.py).
    """
    with path.open("rb") as source:
        head = source.read(len(MAGIC) + _SALT)
        if len(head) != len(MAGIC) + _SALT or not head.startswith(MAGIC):
            raise SealedFileError("not a sealed answer file")
        aead = _file_key(key, head[len(MAGIC):], name)
        index = 0
        block = source.read(_SEALED_SEGMENT)
        while True:
            following = source.read(_SEALED_SEGMENT) if len(block) == _SEALED_SEGMENT else b""
            last = not following
            if len(block) < _NONCE + _TAG:
                raise SealedFileError("cut short")
            try:
                yield aead.decrypt(block[:_NONCE], block[_NONCE:], _aad(name, index, last))
            except InvalidTag:
                raise SealedFileError(f"segment {index} fails its tag") from None
            if last:
                return
            block, index = following, index + 1


def check(key: bytes, name: str, path: Path) -> Sealed:
    """Read a sealed file through once: its size and SHA-256, or SealedFileError."""
    digest = hashlib.sha256()
    size = 0
    for chunk in open_sealed(key, name, path):
        digest.update(chunk)
        size += len(chunk)
    return Sealed(size, digest.hexdigest())
