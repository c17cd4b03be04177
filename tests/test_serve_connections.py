"""Slow and abusive clients against the real server: head and body timeouts, a connection limit, quiet logs.

In review, 1,100 connections sending a byte at a time took every file
descriptor and the log grew 181 MB in 32 s. The server here is
:func:`skcal.serve.server.build_server` (what ``skcal serve`` runs) on
127.0.0.1 with small limits, so that each guard acts within a second.
"""

import json
import logging
import socket
import threading
import time

import pytest
from test_serve_backend import tiny_pipeline

from skcal.serve import LabelStudioBackend
from skcal.serve.connections import RateLimitedLog, connection_limit
from skcal.serve.server import ServerLimits, build_server

LIMITS = ServerLimits(max_connections=4, header_timeout=0.5, body_timeout=1.0)


@pytest.fixture
def server(tmp_path):
    backend = LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=4)
    running = build_server(backend, port=0, log_level="warning", limits=LIMITS)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield running.servers[0].sockets[0].getsockname()[1]
    running.should_exit = True
    thread.join(15)
    backend.close()


def connect(port):
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.settimeout(10)
    return connection


def read_all(connection):
    """Read until the server closes the connection; return what came and how long it took."""
    started, chunks = time.monotonic(), []
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return b"".join(chunks), time.monotonic() - started
        chunks.append(chunk)


def health(port):
    with connect(port) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer, _ = read_all(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def test_a_connection_whose_request_head_never_completes_is_closed(server):
    with connect(server) as slow:
        slow.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")  # and nothing more, ever
        answer, took = read_all(slow)
    assert answer == b"" and took < LIMITS.header_timeout + 2, f"open for {took:.1f} s"
    assert health(server)[1]["server"]["timed_out"] == 1


def test_a_body_that_trickles_in_is_a_408(server):
    with connect(server) as slow:
        slow.sendall(
            b"POST /setup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        for _ in range(3):
            slow.sendall(b" ")
            time.sleep(0.2)
        answer, took = read_all(slow)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == b"408" and b"did not arrive within 1 s" in body
    assert took < LIMITS.body_timeout + 2


def test_connections_beyond_the_limit_are_refused_at_once_and_slow_ones_make_room(server):
    """A slowloris: connections that each send a byte now and then never get to hold the server."""
    slow = [connect(server) for _ in range(LIMITS.max_connections)]
    for connection in slow:
        connection.sendall(b"G")
    time.sleep(0.1)
    with connect(server) as extra:
        answer, took = read_all(extra)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == b"503" and b"retry-after: 1" in head.lower() and took < 1
    assert json.loads(body)["status"] == 503
    for connection in slow:  # a byte at a time does not keep a connection open past the head timeout
        try:
            connection.sendall(b"E")
        except OSError:
            pass
    time.sleep(LIMITS.header_timeout + 0.5)
    status, answer = health(server)
    assert status == 200 and answer["server"]["timed_out"] >= LIMITS.max_connections
    assert answer["server"]["refused"] == 1
    for connection in slow:
        assert read_all(connection)[0] == b""  # closed by the server
        connection.close()


def test_repeated_log_lines_are_rate_limited(caplog):
    handler = logging.Handler()
    handler.emit = lambda record: emitted.append(record.getMessage())
    emitted = []
    limit = RateLimitedLog(burst=3, interval=0.3)
    handler.addFilter(limit)
    log = logging.getLogger("skcal.test.flood")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(1000):
            log.error("socket.accept() out of system resource: %d", i)
        log.error("another kind of line")
        time.sleep(0.35)
        log.error("socket.accept() out of system resource: %d", 1000)
    finally:
        log.removeHandler(handler)
    assert emitted[:4] == [f"socket.accept() out of system resource: {i}" for i in range(3)] + ["another kind of line"]
    assert emitted[4] == "socket.accept() out of system resource: 1000 [997 more like this held back in 0.3 s]"
    assert len(emitted) == 5 and limit.held_back == 997


def test_the_connection_limit_stays_below_the_open_file_limit():
    assert connection_limit(256, 1024) == 256
    assert connection_limit(2000, 1024) == 1024 - 64
    assert connection_limit(256, None) == 256 and connection_limit(256, 10) == 1
    with pytest.raises(ValueError, match="max_connections must be at least 1"):
        ServerLimits(max_connections=0)
    with pytest.raises(ValueError, match="header_timeout must be a positive number"):
        ServerLimits(header_timeout=0)
