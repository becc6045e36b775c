"""Handing messages over: to an SMTP server, or into a local Maildir when none is set.

Exceptions (the worker decides on them):

    DeliveryError            not delivered; .permanent says whether retrying can help
    +-- TemporaryFailure     try again later (RFC 5321 4.2.1: 4yz replies, network errors)
    |   +-- ServerUnavailable  the server as a whole failed us; the rest of a batch would too
    +-- PermanentFailure     never retry this message (5yz replies about it)
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from io import BytesIO
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from form_service.delivery.emails import Outgoing
from form_service.settings import Settings, SettingsError


class DeliveryError(Exception):
    """Raised when a message was not delivered; the message quotes the server's reply."""

    permanent = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryError):
    """Raised for failures that may pass: 4yz replies, refused connections, timeouts."""


class ServerUnavailable(TemporaryFailure):
    """Raised when the server cannot be reached or refuses us as a sender, not just one message."""


class PermanentFailure(DeliveryError):
    """Raised when the server refuses this message for good (a 5yz reply about it)."""

    permanent = True


# Anything shaped like an address in a server's reply ("550 5.1.1 <anna@example.lv>:
# Recipient address rejected"): the reason is logged and shown to staff, and the
# message's reference and Message-ID already say whose it is.
_ADDRESS_IN_REPLY = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")


def without_addresses(reply: str) -> str:
    """A server's reply with every e-mail address in it replaced by "<recipient>"."""
    return _ADDRESS_IN_REPLY.sub("<recipient>", reply)


class Mailer(Protocol):
    async def send(self, outgoing: Outgoing) -> None: ...

    async def close(self) -> None: ...

    async def abort(self) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpConfig:
    """smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps:// (TLS from the start)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError(
            f"POLICY_SMTP_URL={parts.scheme}://{parts.hostname or ''}... must look like "
            "smtp://host:587 or smtps://user:password@host:465."
        )
    use_tls = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or (465 if use_tls else 25),
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpMailer:
    """One connection per batch, opened on the first message and closed by close()."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self._config = parse_smtp_url(url)
        self._timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, outgoing: Outgoing) -> None:
        try:
            smtp = await self._connection()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Greeting, EHLO, STARTTLS or login failed: nothing here is about this message.
            await self._drop()
            raise ServerUnavailable(self._describe(exc)) from None
        try:
            await smtp.send_message(
                outgoing.message, sender=outgoing.sender, recipients=list(outgoing.recipients)
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reason = "; ".join(f"{r.code} {without_addresses(r.message)}" for r in exc.recipients)
            if all(r.code >= 500 for r in exc.recipients):
                raise PermanentFailure(reason) from None
            raise TemporaryFailure(reason) from None
        except aiosmtplib.SMTPSenderRefused as exc:
            # Our own envelope sender: a fault of the setup, not of this message, so
            # nothing is given up for good; tries and back-off buy time to fix it.
            raise ServerUnavailable(f"{exc.code} {exc.message}") from None
        except aiosmtplib.SMTPNotSupported as exc:
            # E.g. an address that needs SMTPUTF8 and a server without it.
            raise PermanentFailure(str(exc)) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # RFC 5321 3.8: the server is closing the connection
                await self._drop()
                raise ServerUnavailable(f"{exc.code} {exc.message}") from None
            reply = f"{exc.code} {without_addresses(exc.message)}"
            if exc.code >= 500:
                raise PermanentFailure(reply) from None
            raise TemporaryFailure(reply) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._drop()
            raise ServerUnavailable(self._describe(exc)) from None

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            detail = f"{exc.code} {exc.message}"
        else:
            detail = str(exc) or type(exc).__name__
        return f"{self._config.host}:{self._config.port}: {without_addresses(detail)}"

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is None or not self._smtp.is_connected:
            smtp = aiosmtplib.SMTP(
                hostname=self._config.host,
                port=self._config.port,
                username=self._config.username,
                password=self._config.password,
                use_tls=self._config.use_tls,
                timeout=self._timeout,
            )
            await smtp.connect()
            self._smtp = smtp
        return self._smtp

    async def abort(self) -> None:
        """Drop the connection without a word: a send was cut short mid-command."""
        await self._drop()

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            smtp.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()


class _PrivateMaildir(mailbox.Maildir):
    """A Maildir whose messages are 0600 (the folders already are 0700): they hold
    customers' names, addresses and words, whatever the process's umask."""

    def _create_tmp(self):  # type: ignore[no-untyped-def]
        file = super()._create_tmp()
        os.fchmod(file.fileno(), 0o600)
        return file


class MaildirMailer:
    """Delivery into a local Maildir (the embedded default: read it with any mail client)."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    async def send(self, outgoing: Outgoing) -> None:
        await asyncio.to_thread(self._deliver, outgoing)

    def _deliver(self, outgoing: Outgoing) -> None:
        envelope = f"Return-Path: <{outgoing.sender}>\n" + "".join(
            f"Delivered-To: {r}\n" for r in outgoing.recipients
        )
        data = envelope.encode("utf-8") + flatten(outgoing, linesep="\n")
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Maildir writes into tmp/ and renames into new/: a reader never sees half a message.
            _PrivateMaildir(self._path, create=True).add(data)
        except OSError as exc:
            raise TemporaryFailure(f"{self._path}: {exc}") from None

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


def flatten(outgoing: Outgoing, *, linesep: str = "\r\n") -> bytes:
    """The message's bytes; UTF-8 headers only where an address needs them (RFC 6532)."""
    addresses = (outgoing.sender, *outgoing.recipients)
    utf8 = not all(a.isascii() for a in addresses)
    buffer = BytesIO()
    message_policy = outgoing.message.policy.clone(linesep=linesep, utf8=utf8)
    BytesGenerator(buffer, policy=message_policy).flatten(outgoing.message)
    return buffer.getvalue()


def mailer_for(settings: Settings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return MaildirMailer(settings.maildir)
