"""Who may use the staff console: members, their passkeys, invites, sessions, challenges.

Kept beside the store (it shares its engine and write queue, store.reading and
store.writing) rather than in it: the requests and their history are the
store's business, the console's accounts are this module's.

No password exists anywhere. A member is created by an invite (a one-time
link, 24 hours); opening it registers a passkey, and the passkey signs in.
Only SHA-256 digests of invite and session tokens are stored, so a copy of
the database opens no session. Removing a member deletes their passkeys,
invites and sessions with them (ON DELETE CASCADE): they are signed out at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from form_service.addresses import AddressError, normalise
from form_service.models import (
    StaffChallenge,
    StaffCredential,
    StaffInvite,
    StaffMember,
    StaffSession,
)
from form_service.store import Store

INVITE_TTL = dt.timedelta(hours=24)
# OWASP Session Management: an idle timeout and an absolute one.
SESSION_IDLE = dt.timedelta(minutes=30)
SESSION_ABSOLUTE = dt.timedelta(hours=12)
# A sign-in or enrolment must be finished within this (the browser's own timeout is 5 min).
CHALLENGE_TTL = dt.timedelta(minutes=5)
# last_seen_at is written at most this often: not on every page view.
_SEEN_EVERY = dt.timedelta(seconds=60)


class MemberError(Exception):
    """Raised when an account operation cannot be done; the message says why, plainly."""


class UnknownMember(MemberError):
    """Raised when no staff member has the address given."""

    def __init__(self, email: str) -> None:
        super().__init__(f"there is no staff member {email!r} (`policy-site staff list` "
                         "shows them)")


class InviteInvalid(MemberError):
    """Raised when an enrolment link is unknown, used already, or expired (`state` says)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state  # "unknown", "used" or "expired"


class ChallengeInvalid(MemberError):
    """Raised when a WebAuthn answer brings a challenge we did not hand out, or used, or old."""


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    name: str
    language: str
    user_handle: str
    created_at: dt.datetime
    passkeys: int = 0


@dataclass(frozen=True)
class Passkey:
    member: Member
    credential_id: str
    public_key: bytes
    sign_count: int


def digest(token: str | bytes) -> str:
    data = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(data).hexdigest()


def staff_address(text: str) -> str:
    """A staff member's address in its normal form, lower-cased: the account's name."""
    try:
        return normalise(text.strip(), smtputf8=True).stored.lower()
    except AddressError as exc:
        raise MemberError(f"{text!r} is not an e-mail address: {exc}") from None


def _member(row: StaffMember, passkeys: int = 0) -> Member:
    return Member(row.id, row.email, row.name, row.language, row.user_handle, row.created_at,
                  passkeys)


class Members:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- accounts (policy-site staff) --------------------------------------------

    def invite(self, email: str, name: str, language: str,
               at: dt.datetime) -> tuple[Member, str]:
        """Create the member (or find them: a lost passkey) and a fresh one-time link token.

        Earlier unused invites of the member stop working: only the newest link counts.
        """
        email = staff_address(email)
        name = " ".join(name.split())
        if not name:
            raise MemberError("a name is required: it is shown in the console and its history")
        token = secrets.token_urlsafe(32)
        with self._store.writing() as session:
            row = session.scalar(select(StaffMember).where(StaffMember.email == email))
            if row is None:
                row = StaffMember(email=email, name=name, language=language, created_at=at,
                                  user_handle=secrets.token_urlsafe(32))
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    raise MemberError(f"{email} was invited at the same moment; "
                                      "try again") from None
            else:
                row.name, row.language = name, language
            session.execute(delete(StaffInvite).where(StaffInvite.member_id == row.id,
                                                      StaffInvite.used_at.is_(None)))
            session.add(StaffInvite(member_id=row.id, token_hash=digest(token), created_at=at,
                                    expires_at=at + INVITE_TTL))
            return _member(row), token

    def list(self) -> list[Member]:
        with self._store.reading() as session:
            counts = dict(session.execute(
                select(StaffCredential.member_id, func.count())
                .group_by(StaffCredential.member_id)).all())
            rows = session.scalars(select(StaffMember).order_by(StaffMember.email))
            return [_member(r, counts.get(r.id, 0)) for r in rows]

    def remove(self, email: str) -> Member:
        """Delete the member with their passkeys, invites and sessions: signed out at once."""
        email = staff_address(email)
        with self._store.writing() as session:
            row = session.scalar(select(StaffMember).where(StaffMember.email == email))
            if row is None:
                raise UnknownMember(email)
            member = _member(row)
            session.execute(delete(StaffMember).where(StaffMember.id == row.id))
            return member

    def get(self, member_id: int) -> Member | None:
        with self._store.reading() as session:
            row = session.get(StaffMember, member_id)
            return None if row is None else _member(row)

    # -- enrolment ------------------------------------------------------------------

    def invited(self, token: str, at: dt.datetime) -> Member:
        """The member an enrolment link is for; InviteInvalid when it cannot be used."""
        with self._store.reading() as session:
            found = session.execute(
                select(StaffInvite, StaffMember)
                .join(StaffMember, StaffMember.id == StaffInvite.member_id)
                .where(StaffInvite.token_hash == digest(token))
            ).first()
            if found is None:
                raise InviteInvalid("unknown")
            invite, member = found
            if invite.used_at is not None:
                raise InviteInvalid("used")
            if invite.expires_at <= at:
                raise InviteInvalid("expired")
            return _member(member)

    def enrol(self, token: str, credential_id: str, public_key: bytes, sign_count: int,
              at: dt.datetime) -> Member:
        """Use the invite once: the new passkey replaces the member's earlier ones (a lost
        passkey is why one is invited again), and every session they had ends."""
        with self._store.writing() as session:
            invite = session.scalar(
                select(StaffInvite).where(StaffInvite.token_hash == digest(token))
                .with_for_update())
            if invite is None:
                raise InviteInvalid("unknown")
            if invite.used_at is not None:
                raise InviteInvalid("used")
            if invite.expires_at <= at:
                raise InviteInvalid("expired")
            invite.used_at = at
            member_id = invite.member_id
            session.execute(delete(StaffCredential).where(StaffCredential.member_id == member_id))
            session.execute(delete(StaffSession).where(StaffSession.member_id == member_id))
            session.add(StaffCredential(member_id=member_id, credential_id=credential_id,
                                        public_key=public_key, sign_count=sign_count,
                                        created_at=at))
            try:
                session.flush()
            except IntegrityError:
                raise MemberError("this passkey is registered already") from None
            row = session.get(StaffMember, member_id)
            assert row is not None
            return _member(row, 1)

    # -- WebAuthn challenges ----------------------------------------------------------

    def new_challenge(self, challenge: bytes, purpose: str, member_id: int | None,
                      at: dt.datetime) -> None:
        with self._store.writing() as session:
            session.execute(delete(StaffChallenge).where(StaffChallenge.expires_at <= at))
            session.add(StaffChallenge(challenge_hash=digest(challenge), purpose=purpose,
                                       member_id=member_id, expires_at=at + CHALLENGE_TTL))

    def take_challenge(self, challenge: bytes, purpose: str, at: dt.datetime) -> int | None:
        """Use a challenge once; the member it was handed to (None: anyone signing in)."""
        with self._store.writing() as session:
            row = session.scalar(
                select(StaffChallenge).where(StaffChallenge.challenge_hash == digest(challenge),
                                             StaffChallenge.purpose == purpose)
                .with_for_update())
            if row is None or row.expires_at <= at:
                raise ChallengeInvalid("no such challenge, or it is used or too old")
            member_id = row.member_id
            session.delete(row)
            return member_id

    # -- passkeys -----------------------------------------------------------------------

    def passkey(self, credential_id: str) -> Passkey | None:
        with self._store.reading() as session:
            found = session.execute(
                select(StaffCredential, StaffMember)
                .join(StaffMember, StaffMember.id == StaffCredential.member_id)
                .where(StaffCredential.credential_id == credential_id)
            ).first()
            if found is None:
                return None
            credential, member = found
            return Passkey(_member(member), credential.credential_id, credential.public_key,
                           credential.sign_count)

    def credential_ids(self, member_id: int) -> list[str]:
        with self._store.reading() as session:
            return list(session.scalars(select(StaffCredential.credential_id)
                                        .where(StaffCredential.member_id == member_id)))

    def used(self, credential_id: str, sign_count: int, at: dt.datetime) -> None:
        with self._store.writing() as session:
            session.execute(update(StaffCredential)
                            .where(StaffCredential.credential_id == credential_id)
                            .values(sign_count=sign_count, last_used_at=at))

    # -- sessions ------------------------------------------------------------------------

    def start_session(self, member_id: int, at: dt.datetime) -> str:
        token = secrets.token_urlsafe(32)
        with self._store.writing() as session:
            session.execute(delete(StaffSession).where(StaffSession.expires_at <= at))
            session.add(StaffSession(member_id=member_id, token_hash=digest(token),
                                     created_at=at, last_seen_at=at,
                                     expires_at=at + SESSION_ABSOLUTE))
        return token

    def session(self, token: str, at: dt.datetime) -> Member | None:
        """The member a session cookie signs in, if the session is alive; it is then touched.

        Dead when idle for SESSION_IDLE, older than SESSION_ABSOLUTE, signed out,
        or its member removed (the row is gone with them).
        """
        if not token:
            return None
        with self._store.reading() as session:
            found = session.execute(
                select(StaffSession, StaffMember)
                .join(StaffMember, StaffMember.id == StaffSession.member_id)
                .where(StaffSession.token_hash == digest(token))
            ).first()
            if found is None:
                return None
            row, member = found
            if row.expires_at <= at or row.last_seen_at + SESSION_IDLE <= at:
                return None
            stale = row.last_seen_at + _SEEN_EVERY <= at
            result = _member(member)
            session_id = row.id
        if stale:
            with self._store.writing() as session:
                session.execute(update(StaffSession).where(StaffSession.id == session_id)
                                .values(last_seen_at=at))
        return result

    def end_session(self, token: str) -> None:
        with self._store.writing() as session:
            session.execute(delete(StaffSession).where(StaffSession.token_hash == digest(token)))
