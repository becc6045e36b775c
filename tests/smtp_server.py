"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, collecting what it is sent.

It can be stopped and started again on the same port (an outage), told to
refuse a recipient with any reply code (550: no such mailbox; 451: try
later), and told to refuse the next messages at DATA after reading them.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        code = self._server.rejections.get(address.lower())
        if code is not None:
            return f"{code} {'5.1.1' if code >= 500 else '4.2.1'} <{address}>: refused by test"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
        if self._server.data_delay:  # a slow server: it reads the message, then thinks
            await asyncio.sleep(self._server.data_delay)
        with self._server.lock:
            if self._server.refuse_data > 0:
                self._server.refuse_data -= 1
                self._server.refused.append(received)
                return "451 4.3.0 Temporary failure, try again"
            self._server.messages.append(received)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.refused: list[Received] = []  # read, then refused at DATA
        self.rejections: dict[str, int] = {}
        self.refuse_data = 0
        self.data_delay = 0.0  # seconds before the answer to DATA (the message is kept)
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, enable_SMTPUTF8=True
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reject(self, address: str, code: int = 550) -> None:
        self.rejections[address.lower()] = code

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m.message_id for m in self.messages]


def body_of(mail: Received) -> str:
    """The plain-text part of a received e-mail (there must be one)."""
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
