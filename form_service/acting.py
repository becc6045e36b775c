"""Who is acting: every event written while a staff member acts names them.

GDPR Art. 5(2) (accountability): the controller must be able to show who saw
a requester's data and who decided what. The console acts as the signed-in
staff member, the CLI as the operating-system user who ran it. The store's
event writer (store._event) adds the current actor to each event's detail,
so no store method needs an extra argument and none can forget it.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

CONSOLE, CLI = "console", "cli"


@dataclass(frozen=True)
class Actor:
    by: str  # the staff member's e-mail address, or the OS user
    via: str  # CONSOLE or CLI

    def detail(self) -> dict[str, str]:
        return {"by": self.by, "via": self.via}


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def as_actor(actor: Actor, func: Callable[..., T]) -> Callable[..., T]:
    """`func` run as `actor` (for run_in_threadpool, whose thread has its own context)."""

    def call(*args: Any, **kwargs: Any) -> T:
        with acting_as(actor):
            return func(*args, **kwargs)

    return call


def os_user() -> str:
    """The operating-system user running the CLI; "unknown" when the system cannot say."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cli_actor() -> Actor:
    return Actor(by=os_user(), via=CLI)
