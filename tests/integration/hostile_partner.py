"""A partner that misbehaves on purpose, over real sockets on 127.0.0.1: it answers a byte at a
time, sends an answer too big to keep, or reads an upload slower than anyone should.

Each connection runs `behave(conn, stop)` in its own thread; `stop` is set when the test
ends, and every behaviour also ends when the client goes away (a send or recv fails) or after
its own bound, so the server never outlives the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

Behaviour = Callable[[socket.socket, threading.Event], None]


class HostilePartner:
    def __init__(self, behave: Behaviour, rcvbuf: int | None = None) -> None:
        self.behave, self.stop = behave, threading.Event()
        self.sock = socket.socket()
        if rcvbuf:  # inherited by accepted sockets: the upload cannot hide in a big buffer
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client went away: that is the point
            self.behave(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for thread in self.threads:
            thread.join(timeout=10)


def read_head(conn: socket.socket) -> int:
    """Read the request line and headers; the Content-Length."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError
        head += chunk
    headers, _, rest = head.partition(b"\r\n\r\n")
    length = 0
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return length - len(rest)


def read_body(conn: socket.socket, left: int) -> None:
    while left > 0:
        chunk = conn.recv(min(left, 65536))
        if not chunk:
            raise ConnectionResetError
        left -= len(chunk)


def trickle(body: bytes, every: float) -> Behaviour:
    """Answer 200 with `body`, one byte every `every` seconds."""
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_body(conn, read_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            if stop.wait(every):
                return
            conn.sendall(bytes([byte]))
    return behave


class BigAnswer:
    """Answer `status` with a JSON body of `size` bytes holding an id, with its length declared
    or chunked; counts what it managed to send."""

    def __init__(self, size: int, status: int = 200, declared: bool = True) -> None:
        self.size, self.status, self.declared, self.sent = size, status, declared, 0

    def __call__(self, conn: socket.socket, stop: threading.Event) -> None:
        read_body(conn, read_head(conn))
        framing = (b"Content-Length: %d" % self.size if self.declared
                   else b"Transfer-Encoding: chunked")
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s\r\n\r\n"
                     % (self.status, framing))
        start, end = b'{"id": "P-1", "error": "big", "pad": "', b'"}'
        block = b"x" * 65536
        left = self.size - len(start) - len(end)
        pieces = [start]
        while left > 0 and not stop.is_set():
            pieces.append(block[:left])
            left -= len(pieces[-1])
            self._send(conn, b"".join(pieces))
            pieces = []
        self._send(conn, end)
        if not self.declared:
            conn.sendall(b"0\r\n\r\n")

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data if self.declared else b"%x\r\n%s\r\n" % (len(data), data))
        self.sent += len(data)


def slow_reader(per_read: int, every: float, give_up: float) -> Behaviour:
    """Read the upload `per_read` bytes every `every` seconds; hang up after `give_up` s."""
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        left = read_head(conn)
        ends = time.monotonic() + give_up
        while left > 0 and time.monotonic() < ends:
            if stop.wait(every):
                return
            chunk = conn.recv(min(per_read, left))
            if not chunk:
                return
            left -= len(chunk)
        if left <= 0:
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 13\r\n\r\n{\"id\": \"D-1\"}")
    return behave
