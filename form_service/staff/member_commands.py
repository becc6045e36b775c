"""`policy-site staff`: who may sign in to the staff console.

    invite EMAIL --name NAME   create the member (or find them) and e-mail and print a
                               one-time enrolment link (24 hours) that registers a passkey
    list                       the members, their passkeys, when they were invited
    remove EMAIL               delete the member: their sessions end at once

A lost passkey: invite again; the new passkey replaces the old ones. Each
change is an event of the register naming the OS user who ran the command.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

from sqlalchemy.exc import SQLAlchemyError

from form_service.acting import acting_as, cli_actor
from form_service.delivery.emails import MessageError, Outgoing, staff_invite
from form_service.delivery.mailer import DeliveryError, mailer_for
from form_service.settings import Settings, SettingsError, load_settings
from form_service.staff.commands import fail, print_rows
from form_service.staff.members import INVITE_TTL, Member, MemberError, Members
from form_service.store import Store
from site_config.facts import FactsError, load_site

PROG = "policy-site staff"


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("staff", help="Staff console accounts: invite, list, remove.",
                       description="Who may sign in to the staff console (passkeys only).")
    p.set_defaults(func=run, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")

    q = actions.add_parser("invite", help="Invite a member: e-mail and print a one-time link "
                           "(24 h) that registers their passkey.",
                           description="Create a staff member, or invite one again after a "
                           "lost passkey, and e-mail and print their one-time enrolment link.")
    q.add_argument("email", metavar="EMAIL")
    q.add_argument("--name", required=True, help="their name, as the console shows it")
    q.add_argument("--lang", choices=("lv", "en"),
                   help="language of their console and e-mail (default: staff_language)")
    q.set_defaults(action_func=_invite)

    q = actions.add_parser("list", help="List the members and their passkeys.",
                           description="List the staff members and their passkeys.")
    q.set_defaults(action_func=_list)

    q = actions.add_parser("remove", help="Remove a member; their sessions end at once.",
                           description="Remove a staff member: their passkeys stop working "
                           "and every session of theirs ends at once.")
    q.add_argument("email", metavar="EMAIL")
    q.set_defaults(action_func=_remove)


def run(args: argparse.Namespace) -> int:
    if args.action is None:
        return fail(PROG, None, "name an action: invite, list or remove (see --help)")
    try:
        settings = load_settings(root=args.root)
        store = Store.from_settings(settings, statement_timeouts=False)
    except (SettingsError, FactsError) as exc:
        return fail(PROG, args.action, str(exc))
    try:
        store.migrate()
        with acting_as(cli_actor()):
            return int(args.action_func(Members(store), store, settings, args))
    except (MemberError, FactsError, SettingsError) as exc:
        return fail(PROG, args.action, str(exc))
    except SQLAlchemyError as exc:
        return fail(PROG, args.action, f"the database in POLICY_DATABASE_URL cannot be used "
                                       f"({type(exc).__name__})")
    finally:
        store.close()


def enrol_link(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/staff/enrol/{token}"


def _invite(members: Members, store: Store, settings: Settings, args: argparse.Namespace) -> int:
    site = load_site(settings.root)
    lang = args.lang or site.staff_language
    now = dt.datetime.now(dt.UTC)
    member, token = members.invite(args.email, args.name, lang, now)
    store.register_event("staff_invited", now, {"member": member.email})
    link = enrol_link(settings, token)
    hours = int(INVITE_TTL.total_seconds() // 3600)
    print(f"Invited {member.name} <{member.email}>. Their one-time link, valid {hours} hours:")
    print(f"  {link}")
    try:
        outgoing = staff_invite(member.email, member.name, link, lang, hours, settings, now=now)
        asyncio.run(_send(settings, outgoing))
    except (DeliveryError, MessageError, OSError) as exc:
        print(f"It could not be e-mailed ({exc}): give them the link yourself.")
    else:
        print(f"E-mailed to {member.email}.")
    if not settings.staff_console:
        print("The console is off: set POLICY_STAFF_CONSOLE=on for the link to work.")
    return 0


async def _send(settings: Settings, outgoing: Outgoing) -> None:
    mailer = mailer_for(settings)
    try:
        await mailer.send(outgoing)
    finally:
        await mailer.close()


def _list(members: Members, store: Store, settings: Settings, args: argparse.Namespace) -> int:
    found = members.list()
    if not found:
        print("No staff members yet: `policy-site staff invite EMAIL --name NAME`.")
        return 0
    print_rows(("EMAIL", "NAME", "LANG", "PASSKEYS", "INVITED"),
               [(m.email, m.name, m.language, str(m.passkeys) if m.passkeys else "none yet",
                 m.created_at.date().isoformat()) for m in found])
    return 0


def _remove(members: Members, store: Store, settings: Settings, args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    member: Member = members.remove(args.email)
    store.register_event("staff_removed", now, {"member": member.email})
    print(f"Removed {member.name} <{member.email}>: their passkeys no longer work and their "
          "sessions have ended.")
    return 0
