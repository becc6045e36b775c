"""A TCP forwarder the test controls, to make a dependency go silent without closing anything.

A server that crashes or refuses is easy to notice: the connection is reset.
What hangs a service is a path that drops packets silently (a firewall, a
dead switch, a frozen VM): every socket stays open and nothing comes back.
`silence()` reproduces that: no byte is copied in either direction, every
socket stays open, new connections are still accepted (the kernel completes
the handshake) but nothing they send reaches the server. `resume()` copies
again, including what waited in the buffers meanwhile.

Threads, not asyncio: the app under test runs its own event loops, and a
forwarder sharing one of them would stall with it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator


class Forwarder:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Closing a socket does not wake a thread blocked in accept(): poll instead.
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> Forwarder:
        self._spawn(self._accept)
        return self

    def silence(self) -> None:
        """Stop copying bytes both ways; keep every socket open, keep accepting."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._closed.set()
        self._forwarding.set()  # wake the pumps so that they see the close
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client.settimeout(None)
            # Connecting upstream at once is harmless while silent: the server only
            # waits for a startup message that the pump will not pass on.
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._closed.is_set():
            if not self._forwarding.wait(timeout=0.1):
                continue  # silent: leave the bytes in the kernel's buffers
            try:
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable or not self._forwarding.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except (OSError, ValueError):
                return  # a side closed (or the forwarder did)


@contextlib.contextmanager
def forwarding(host: str, port: int) -> Iterator[Forwarder]:
    forwarder = Forwarder(host, port).start()
    try:
        yield forwarder
    finally:
        forwarder.close()
