"""Answer files sealed at rest (form_service/sealed.py): AES-256-GCM in 64 KiB segments."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest

from form_service import sealed
from form_service.sealed import SEGMENT, SealedFileError, check, open_sealed, seal_stream

KEY = bytes(range(32))
NAME = "0123456789abcdef0123456789abcdef"
_HEAD = len(sealed.MAGIC) + 16
_BLOCK = 12 + SEGMENT + 16


def _seal(tmp_path: Path, data: bytes, name: str = NAME) -> Path:
    path = tmp_path / name
    chunks = [data[i:i + 10_000] for i in range(0, len(data), 10_000)] or [b""]
    with path.open("wb") as out:
        seal_stream(KEY, name, chunks, out)
    return path


def _clear(path: Path, name: str = NAME, key: bytes = KEY) -> bytes:
    return b"".join(open_sealed(key, name, path))


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])
def test_what_is_sealed_comes_back_byte_for_byte(tmp_path: Path, size: int) -> None:
    """Any length, across segment boundaries and written in odd chunks, reads back exactly."""
    data = os.urandom(size)
    path = _seal(tmp_path, data)
    assert _clear(path) == data
    assert check(KEY, NAME, path).size == size


def test_no_clear_text_on_disk(tmp_path: Path) -> None:
    """The sealed file holds none of the clear text, not even a 16-byte run of it."""
    data = (b"Janis Berzins, personas kods 010190-12345; " * 5000)
    raw = _seal(tmp_path, data).read_bytes()
    assert b"Janis" not in raw and b"010190" not in raw
    assert all(data[i:i + 16] not in raw for i in range(0, len(data), 4096))


def test_a_changed_byte_is_refused(tmp_path: Path) -> None:
    """One flipped bit anywhere in a segment fails its tag: the file is not read."""
    path = _seal(tmp_path, os.urandom(2 * SEGMENT))
    raw = bytearray(path.read_bytes())
    raw[_HEAD + _BLOCK + 100] ^= 1
    path.write_bytes(raw)
    with pytest.raises(SealedFileError):
        _clear(path)


def test_a_file_cut_at_a_segment_boundary_is_refused(tmp_path: Path) -> None:
    """Dropping the last segments leaves a segment not sealed as the last: refused."""
    path = _seal(tmp_path, os.urandom(3 * SEGMENT + 5))
    path.write_bytes(path.read_bytes()[: _HEAD + 2 * _BLOCK])
    with pytest.raises(SealedFileError):
        _clear(path)


def test_segments_swapped_are_refused(tmp_path: Path) -> None:
    """Each segment's index is in its associated data: reordering is detected."""
    path = _seal(tmp_path, os.urandom(3 * SEGMENT))
    raw = path.read_bytes()
    first, second = raw[_HEAD:_HEAD + _BLOCK], raw[_HEAD + _BLOCK:_HEAD + 2 * _BLOCK]
    path.write_bytes(raw[:_HEAD] + second + first + raw[_HEAD + 2 * _BLOCK:])
    with pytest.raises(SealedFileError):
        _clear(path)


def test_a_file_moved_to_another_name_or_read_with_another_key_is_refused(
        tmp_path: Path) -> None:
    """The file's stored name is bound in (no swapping files between requests), and only
    POLICY_FILES_KEY opens it."""
    path = _seal(tmp_path, b"hello")
    with pytest.raises(SealedFileError):
        _clear(path, name="f" * 32)
    with pytest.raises(SealedFileError):
        _clear(path, key=bytes(32))
    path.write_bytes(b"not sealed at all")
    with pytest.raises(SealedFileError):
        _clear(path)


def test_the_size_limit_stops_sealing_while_it_streams(tmp_path: Path) -> None:
    """A file growing past the limit is stopped as the bytes arrive, not after."""
    sealer = sealed.Sealer(KEY, NAME, io.BytesIO(), limit=100_000)
    sealer.write(b"x" * 100_000)
    with pytest.raises(sealed.TooLarge):
        sealer.write(b"x")


def test_sealing_and_reading_keep_only_segments_in_memory(tmp_path: Path) -> None:
    """An 8 MB file is sealed and read with a bounded peak of memory (a few segments)."""
    source = tmp_path / "clear.bin"
    with source.open("wb") as out:
        for _ in range(128):
            out.write(os.urandom(SEGMENT))
    tracemalloc.start()
    try:
        with (tmp_path / NAME).open("wb") as out:
            seal_stream(KEY, NAME, sealed.read_chunks(source), out)
        for _ in open_sealed(KEY, NAME, tmp_path / NAME):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
