"""The explorer's server under attack, bounded: a real uvicorn process (as ``attnkit serve``
runs it) gets oversized bodies in every framing, oversized headers, slow clients and many idle
connections; its memory stays within 50 MiB of its idle size and it keeps answering."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bad_input

SERVER = """
import sys
from attnkit.serve import server
server({}, port=int(sys.argv[1])).run()
"""
MiB = 1 << 20


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def live():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
    yield port, proc
    proc.terminate()
    proc.wait(10)


def _ask(port: int, request: bytes, timeout: float = 10) -> bytes:
    """The server's whole answer to ``request`` (which asks it to close), b"" if it reset the
    connection instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def _alive(port: int) -> None:
    got = _ask(port, b"GET /api/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"[]"), got[:200]


def _flood(port: int, head: bytes, total: int, chunked: bool) -> bytes:
    """Send ``head`` then ``total`` bytes of body (chunked, or raw) until the server stops
    reading; the server's answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    block = b"x" * MiB
    piece = (b"%x\r\n" % len(block)) + block + b"\r\n" if chunked else block
    sent = 0
    try:
        while sent < total:
            s.sendall(piece)
            sent += len(block)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:  # the server closed the connection: what a refused body should get
        pass
    try:
        answer = s.recv(65536)
    except OSError:
        answer = b""
    s.close()
    return answer


@pytest.mark.parametrize(
    "head, chunked, status",
    [
        (b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n", True, b"400"),
        (b"Transfer-Encoding: chunked\r\n", True, b"413"),
        (b"Content-Length: 314572800\r\n", False, b"413"),
    ],
    ids=["both-framings", "chunked", "declared-length"],
)
def test_a_300_mib_body_is_refused_and_memory_stays_bounded(live, head, chunked, status):
    port, proc = live
    _alive(port)
    idle = _rss(proc.pid)
    request = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer = _flood(port, request + head + b"\r\n", 300 * MiB, chunked)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert _rss(proc.pid) - idle < 50 * MiB
    _alive(port)


def test_oversized_headers_are_refused(live):
    port, proc = live
    big = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000 + b"\r\n"
    big += b"Connection: close\r\n\r\n"
    answer = _ask(port, big)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), answer[:200]
    _alive(port)


def test_slow_clients_and_idle_connections_do_not_stop_it_answering(live):
    port, proc = live
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    slow = []
    for _ in range(20):  # a request line, then nothing: a client that never finishes
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        slow.append(s)
    stop = threading.Event()

    def trickle():  # one byte of headers every 50 ms
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /api/models HTTP/1.1\r\n")
        while not stop.is_set():
            try:
                s.sendall(b"X")
            except OSError:
                break
            time.sleep(0.05)
        s.close()

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        started = time.monotonic()
        for _ in range(5):
            _alive(port)
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        for s in idle + slow:
            s.close()
        for t in threads:
            t.join(5)
    assert proc.poll() is None
