"""Staff accounts in the database (form_service/staff/members.py), on SQLite and PostgreSQL:
invites, passkeys, sessions and challenges, and what removing a member ends."""

from __future__ import annotations

import datetime as dt

import pytest

from form_service.staff.members import (
    ChallengeInvalid,
    InviteInvalid,
    MemberError,
    Members,
    UnknownMember,
)
from form_service.store import Store

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
ANNA = "Anna@Pulkstenu-Outlets.lv"


@pytest.fixture
def members(store: Store) -> Members:
    return Members(store)


def _enrolled(members: Members, email: str = ANNA) -> tuple[int, str]:
    _, token = members.invite(email, "Anna Liepa", "lv", T0)
    member = members.enrol(token, f"cred-{email}", b"key", 0, T0)
    return member.id, token


def test_an_invite_works_once_and_for_24_hours(members: Members) -> None:
    """The link names its member until used or 24 hours old; then it says which."""
    member, token = members.invite(ANNA, "Anna  Liepa", "lv", T0)
    assert (member.email, member.name) == ("anna@pulkstenu-outlets.lv", "Anna Liepa")
    assert members.invited(token, T0 + dt.timedelta(hours=23)).id == member.id
    with pytest.raises(InviteInvalid) as late:
        members.invited(token, T0 + dt.timedelta(hours=24))
    assert late.value.state == "expired"
    members.enrol(token, "cred", b"key", 0, T0 + dt.timedelta(hours=1))
    with pytest.raises(InviteInvalid) as used:
        members.enrol(token, "cred-2", b"key", 0, T0 + dt.timedelta(hours=2))
    assert used.value.state == "used"
    with pytest.raises(InviteInvalid) as unknown:
        members.invited("nothing", T0)
    assert unknown.value.state == "unknown"


def test_a_newer_invite_replaces_the_unused_one(members: Members) -> None:
    """Inviting again makes the earlier unused link stop working; one member, not two."""
    _, first = members.invite(ANNA, "Anna Liepa", "lv", T0)
    _, second = members.invite(ANNA.lower(), "Anna Liepa", "en", T0)
    with pytest.raises(InviteInvalid):
        members.invited(first, T0)
    assert members.invited(second, T0).language == "en"
    assert len(members.list()) == 1


def test_enrolling_again_replaces_the_passkey_and_ends_sessions(members: Members) -> None:
    """A lost passkey: the new one replaces it, and sessions opened with the old one end."""
    member_id, _ = _enrolled(members)
    session = members.start_session(member_id, T0)
    _, token = members.invite(ANNA, "Anna Liepa", "lv", T0)
    members.enrol(token, "new-cred", b"key2", 0, T0)
    assert members.passkey(f"cred-{ANNA}") is None
    assert members.credential_ids(member_id) == ["new-cred"]
    assert members.session(session, T0) is None


def test_sessions_end_when_idle_30_minutes_or_after_12_hours(members: Members) -> None:
    """Use keeps a session alive up to 12 hours; 30 minutes without use ends it."""
    member_id, _ = _enrolled(members)
    token = members.start_session(member_id, T0)
    for step in range(1, 29):  # every 25 minutes, up to 11 h 40 min
        at = T0 + dt.timedelta(minutes=25 * step)
        assert members.session(token, at) is not None, at
    assert members.session(token, T0 + dt.timedelta(hours=12)) is None
    idle = members.start_session(member_id, T0)
    assert members.session(idle, T0 + dt.timedelta(minutes=29)) is not None
    assert members.session(idle, T0 + dt.timedelta(minutes=59, seconds=1)) is None
    assert members.session("", T0) is None and members.session("forged", T0) is None


def test_removing_a_member_ends_everything_of_theirs(members: Members) -> None:
    """Remove deletes the member's passkeys and sessions at once; an unknown one is an error."""
    member_id, _ = _enrolled(members)
    token = members.start_session(member_id, T0)
    members.remove(ANNA)
    assert members.session(token, T0) is None
    assert members.passkey(f"cred-{ANNA}") is None
    assert members.list() == []
    with pytest.raises(UnknownMember):
        members.remove(ANNA)


def test_a_challenge_is_used_once_and_only_for_a_while(members: Members) -> None:
    """A challenge is taken once, for its purpose, within 5 minutes."""
    members.new_challenge(b"c1", "sign-in", None, T0)
    assert members.take_challenge(b"c1", "sign-in", T0) is None
    with pytest.raises(ChallengeInvalid):
        members.take_challenge(b"c1", "sign-in", T0)
    members.new_challenge(b"c2", "export", None, T0)
    with pytest.raises(ChallengeInvalid):
        members.take_challenge(b"c2", "sign-in", T0)
    members.new_challenge(b"c3", "sign-in", None, T0)
    with pytest.raises(ChallengeInvalid):
        members.take_challenge(b"c3", "sign-in", T0 + dt.timedelta(minutes=5))


def test_an_address_and_a_name_are_required(members: Members) -> None:
    """A staff member needs a real e-mail address and a name."""
    with pytest.raises(MemberError, match="not an e-mail address"):
        members.invite("anna", "Anna", "lv", T0)
    with pytest.raises(MemberError, match="a name is required"):
        members.invite(ANNA, "  ", "lv", T0)
