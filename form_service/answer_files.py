"""Answer files: what staff attach to an answer (a copy of the data, GDPR Art. 15(3);
portable data, Art. 20), sealed at rest and handed out only against a fresh code.

- Sealing (sealed.py): each file is encrypted in 64 KiB segments as it is read,
  into var/answers/<random>, 0600; the clear text is never on disk or whole in
  memory. The file's row (name, type, size, SHA-256, expiry) is written with the
  answer in one transaction; a sealed file no row names (an attach that failed
  half-way, a console preview never confirmed) is removed by the purge.
- Codes: the status link alone opens nothing. A download needs a 6-digit code
  e-mailed to the request's address at that moment (CODE_TTL, MAX_TRIES); only
  an HMAC of it is kept, and the e-mail's own copy is erased once sent.
- The purge (hourly, the worker's): files past their time are deleted from disk;
  the row stays, so the status page can say so and how to ask again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from form_service import outbox, sealed
from form_service.deadlines import RIGA
from form_service.models import AnswerFile, DownloadCode, Request
from form_service.private import private_folder
from form_service.records import DONE, NotAllowed, RequestRecord, StoreError
from form_service.references import normalise_reference
from form_service.store import _reason, _require_open, append_event, to_record

if TYPE_CHECKING:
    from form_service.settings import Settings
    from form_service.store import Store

# What an answer may carry: formats a person opens without special software.
MEDIA_TYPES = {
    ".zip": "application/zip",
    ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The first bytes each binary format starts with; text formats must hold no NUL byte.
_MAGIC = {".zip": (b"PK\x03\x04", b"PK\x05\x06"), ".pdf": (b"%PDF-",)}
MAX_FILES = 10
CODE_TTL = dt.timedelta(minutes=10)
MAX_TRIES = 5
# After the right code, downloads work this long (then a new code is needed).
GRANT_TTL = dt.timedelta(minutes=10)
# A sealed file without a row is left alone this long: an attach may be under way, or a
# console preview waiting for its second click.
_ORPHAN_AGE = 6 * 3600
_STORED_NAME = re.compile(r"^[0-9a-f]{32}$")


class AnswerFileError(StoreError):
    """Raised when a file cannot be attached; the message says why, in one sentence, and
    `key` names the reason for the console's texts (console_file_error_<key>)."""

    def __init__(self, message: str, key: str = "type") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class StoredFile:
    """A file sealed on disk, not yet (or already) part of an answer."""

    stored_as: str
    name: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FileInfo(StoredFile):
    id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    deleted_at: dt.datetime | None

    def available(self, now: dt.datetime) -> bool:
        return self.deleted_at is None and now < self.expires_at


@dataclass(frozen=True)
class CodeResult:
    """What entering a code did: "accepted", "wrong" (tries_left), "locked" or "expired"."""

    outcome: str
    code_id: int | None = None
    tries_left: int = 0


# -- sealing ---------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """The file's name as the customer will see it: no folders, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip().strip(".")
    stem, dot, ext = base.rpartition(".")
    if len(base.encode()) > 200:
        base = stem.encode()[:180].decode(errors="ignore") + dot + ext
    return base or "answer"


def media_type_of(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext not in MEDIA_TYPES:
        raise AnswerFileError(
            f"{name!r} is not a file an answer may carry; use ZIP, PDF, CSV, JSON or TXT")
    return MEDIA_TYPES[ext]


def _check_start(name: str, first: bytes) -> None:
    """The file is what its name says: ZIP and PDF by their signature, text without NUL."""
    ext = os.path.splitext(name)[1].lower()
    starts = _MAGIC.get(ext)
    if starts is not None and not first.startswith(starts):
        raise AnswerFileError(f"{name!r} is not a {ext[1:].upper()} file (it does not start "
                              "like one)", "content")
    if starts is None and b"\x00" in first:
        raise AnswerFileError(f"{name!r} is not a text file (it holds binary data)", "content")


class Sealing:
    """One file being sealed into the answers folder as its bytes arrive (CLI or upload)."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.name = clean_name(name)
        self.media_type = media_type_of(self.name)
        self._key = settings.require_files_key()
        self.stored_as = secrets.token_hex(16)
        folder = private_folder(settings.answers_dir)
        self._part = folder / f"{self.stored_as}.part"
        self._final = folder / self.stored_as
        # 0600 from the first byte, never through a link someone left in the folder.
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._out = open(fd, "wb")  # closed in finish() or abort()
        self._sealer = sealed.Sealer(self._key, self.stored_as, self._out,
                                     settings.answer_file_max_bytes)
        self._first = b""  # the first KiB: is the file what its name says (_check_start)?
        self._checked = False

    def write(self, data: bytes) -> None:
        if not self._checked:
            self._first += data[: 1024 - len(self._first)]
            if len(self._first) >= 1024:
                _check_start(self.name, self._first)
                self._checked = True
        try:
            self._sealer.write(data)
        except sealed.TooLarge as exc:
            raise AnswerFileError(
                f"{self.name!r} is larger than {exc.limit // 1_000_000} MB, the most an "
                "answer file may be (POLICY_ANSWER_FILE_MAX_MB)", "too_large") from None

    def finish(self) -> StoredFile:
        try:
            if not self._checked:
                _check_start(self.name, self._first)
            result = self._sealer.close()
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            os.replace(self._part, self._final)
        except BaseException:
            self.abort()
            raise
        return StoredFile(self.stored_as, self.name, self.media_type, result.size,
                          result.sha256)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        for path in (self._part, self._final):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def seal_file(settings: Settings, path: Path, name: str | None = None) -> StoredFile:
    """Seal a file from disk, read 64 KiB at a time."""
    if not path.is_file():
        raise AnswerFileError(f"{path} is not a file")
    sealing = Sealing(settings, name or path.name)
    try:
        for chunk in sealed.read_chunks(path):
            sealing.write(chunk)
        return sealing.finish()
    except BaseException:
        sealing.abort()
        raise


def discard(settings: Settings, files: Iterable[StoredFile]) -> None:
    """Delete sealed files that did not become part of an answer."""
    for stored in files:
        if _STORED_NAME.match(stored.stored_as):
            with contextlib.suppress(FileNotFoundError):
                (settings.answers_dir / stored.stored_as).unlink()


def stream(settings: Settings, info: FileInfo) -> Iterator[bytes]:
    """The clear bytes of an answer file, checked whole first: an altered file is refused
    (sealed.SealedFileError) before a byte of it is sent."""
    key = settings.require_files_key()
    path = settings.answers_dir / info.stored_as
    checked = sealed.check(key, info.stored_as, path)
    if (checked.size, checked.sha256) != (info.size, info.sha256):
        raise sealed.SealedFileError("not the file that was attached")
    return sealed.open_sealed(key, info.stored_as, path)


# -- the store's side ------------------------------------------------------------------


def _request_id(session: object, reference: str) -> int | None:
    canonical = normalise_reference(reference)
    if canonical is None:
        return None
    return session.scalar(  # type: ignore[attr-defined, no-any-return]
        select(Request.id).where(Request.reference == canonical))


def _info(row: AnswerFile) -> FileInfo:
    return FileInfo(stored_as=row.stored_as, name=row.name, media_type=row.media_type,
                    size=row.size, sha256=row.sha256, id=row.id, created_at=row.created_at,
                    expires_at=row.expires_at, deleted_at=row.deleted_at)


class AnswerFiles:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def answer(self, reference: str, message: str, files: list[StoredFile],
               at: dt.datetime) -> RequestRecord:
        """Close the request as done with these files, and e-mail "your answer is ready".

        The e-mail carries no data: the files wait on the status page, behind a code.
        """
        message = _reason(message, "an answer")
        if not files:
            raise AnswerFileError("an answer with files needs at least one file")
        if len(files) > MAX_FILES:
            raise AnswerFileError(f"an answer carries at most {MAX_FILES} files", "too_many")
        expires = at + dt.timedelta(days=self._settings.answer_files_days)
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            _require_open(row)
            for stored in files:
                session.add(AnswerFile(
                    request_id=row.id, stored_as=stored.stored_as, name=stored.name,
                    media_type=stored.media_type, size=stored.size, sha256=stored.sha256,
                    created_at=at, expires_at=expires))
            row.status = DONE
            row.closed_at = at
            row.close_reason = message
            detail = {
                "outcome": DONE, "reason": message,
                "closed_at": at.astimezone(dt.UTC).isoformat(),
                "due_at": row.due_at.isoformat(),
                "late": at.astimezone(RIGA).date() > row.due_at,
                "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
                "files_until": expires.isoformat(),
            }
            append_event(session, row, "closed", at, detail)
            outbox.enqueue(session, row, "ready", domain=self._store.message_domain, at=at,
                           payload=detail)
            return to_record(row)

    def files(self, reference: str) -> list[FileInfo]:
        with self._store.reading() as session:
            request_id = _request_id(session, reference)
            rows = session.scalars(select(AnswerFile).where(AnswerFile.request_id == request_id)
                                   .order_by(AnswerFile.id))
            return [_info(r) for r in rows]

    # -- codes --

    def code_digest(self, reference: str, code: str) -> str:
        """An HMAC of the code under the service's key: a copy of the table gives no code
        away (a million codes are tried in no time against a plain hash)."""
        return hmac.new(self._settings.secret_key.encode(),
                        f"download-code:{reference}:{code}".encode(), hashlib.sha256).hexdigest()

    def send_code(self, reference: str, at: dt.datetime) -> RequestRecord:
        """A fresh code to the request's address; every earlier code stops working."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            live = session.scalar(select(AnswerFile.id).where(
                AnswerFile.request_id == row.id, AnswerFile.deleted_at.is_(None),
                AnswerFile.expires_at > at).limit(1))
            if live is None:
                raise NotAllowed(f"{row.reference} has no answer files to download")
            for earlier in session.scalars(select(DownloadCode).where(
                    DownloadCode.request_id == row.id, DownloadCode.expires_at > at)):
                earlier.expires_at = at
            session.add(DownloadCode(request_id=row.id,
                                     code_hash=self.code_digest(row.reference, code),
                                     created_at=at, expires_at=at + CODE_TTL, tries=0))
            append_event(session, row, "code_sent", at, None)
            sent = session.scalar(select(DownloadCode.id).where(
                DownloadCode.request_id == row.id).order_by(DownloadCode.id.desc()).limit(1))
            # The code travels in the outbox row until sent, then it is erased (store.mark_sent).
            outbox.enqueue(session, row, "code", domain=self._store.message_domain, at=at,
                           payload={"code": code, "minutes": int(CODE_TTL.total_seconds() // 60)},
                           n=int(sent or 1))
            return to_record(row)

    def enter_code(self, reference: str, code: str, at: dt.datetime) -> CodeResult:
        """Check a code typed on the status page; the 5th wrong try locks that code."""
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            latest = session.scalar(select(DownloadCode).where(DownloadCode.request_id == row.id)
                                    .order_by(DownloadCode.id.desc()).limit(1))
            if latest is None or latest.expires_at <= at:
                return CodeResult("expired")
            if latest.accepted_at is not None:
                return CodeResult("accepted", latest.id)
            if latest.tries >= MAX_TRIES:
                return CodeResult("locked")
            given = self.code_digest(row.reference, code.strip())
            if hmac.compare_digest(given, latest.code_hash):
                latest.accepted_at = at
                append_event(session, row, "code_accepted", at, None)
                return CodeResult("accepted", latest.id)
            latest.tries += 1
            if latest.tries >= MAX_TRIES:
                append_event(session, row, "code_locked", at, {"tries": latest.tries})
                return CodeResult("locked")
            return CodeResult("wrong", tries_left=MAX_TRIES - latest.tries)

    def granted(self, reference: str, code_id: int, at: dt.datetime) -> bool:
        """Whether downloads are open: this code was accepted, recently, and is the newest."""
        with self._store.reading() as session:
            request_id = _request_id(session, reference)
            latest = session.scalar(select(DownloadCode).where(
                DownloadCode.request_id == request_id).order_by(DownloadCode.id.desc()).limit(1))
            return (latest is not None and latest.id == code_id
                    and latest.accepted_at is not None and at < latest.accepted_at + GRANT_TTL)

    def downloaded(self, reference: str, info: FileInfo, at: dt.datetime) -> None:
        """Every download is an event (GDPR Art. 5(2): who received the data, and when)."""
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            append_event(session, row, "downloaded", at,
                         {"file": info.name, "size": info.size, "sha256": info.sha256})


def purge(store: Store, now: dt.datetime, folder: Path) -> int:
    """Storage limitation (GDPR Art. 5(1)(e)): delete answer files past their time, and
    sealed files no row names (their request was purged, or an attach never finished)."""
    removed = 0
    with store.writing() as session:
        rows = session.scalars(select(AnswerFile).where(
            AnswerFile.expires_at <= now, AnswerFile.deleted_at.is_(None)).with_for_update()).all()
        requests: dict[int, list[str]] = {}
        for row in rows:
            with contextlib.suppress(FileNotFoundError):
                (folder / row.stored_as).unlink()
            row.deleted_at = now
            requests.setdefault(row.request_id, []).append(row.name)
            removed += 1
        for request_id, names in requests.items():
            request = session.get(Request, request_id)
            append_event(session, request, "files_deleted", now, {"files": names})
        known = set(session.scalars(select(AnswerFile.stored_as)))
    if folder.is_dir():
        cutoff = time.time() - _ORPHAN_AGE
        for path in folder.iterdir():
            stem = path.name.removesuffix(".part")
            if not _STORED_NAME.match(stem) or (path.name in known):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
    return removed
