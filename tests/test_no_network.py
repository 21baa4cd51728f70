"""The session's network guard (tests/conftest.py): nothing may be downloaded at run time.

Every test runs with ``socket.connect`` refusing non-loopback addresses, so a model or data
download anywhere in the code under test fails loudly; the service tests' loopback connections
still work.
"""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest


def test_a_connection_to_the_internet_is_refused(blocked_connections) -> None:
    # documentation addresses (RFC 5737, RFC 3849): nothing answers there
    outside = [(socket.AF_INET, ("192.0.2.1", 80)), (socket.AF_INET6, ("2001:db8::1", 443))]
    for family, address in outside:
        with (
            socket.socket(family, socket.SOCK_STREAM) as s,
            pytest.raises(RuntimeError, match="reach the network"),
        ):
            s.connect(address)
    with socket.socket() as s, pytest.raises(RuntimeError, match="example.org"):
        s.connect_ex(("example.org", 80))  # a host name is never looked up
    assert len(blocked_connections) >= 3


def test_a_download_fails_loudly(blocked_connections) -> None:
    # what a weight download (torch.hub, requests, urllib) ends in; not an OSError, so a
    # "retry / fall back when offline" branch cannot swallow it
    with pytest.raises(RuntimeError, match="nothing may be downloaded"):
        urllib.request.urlopen("http://192.0.2.1/model.pt", timeout=5)
    assert any("192.0.2.1" in c for c in blocked_connections)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        accepted: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                accepted.append(conn.recv(5))

        t = threading.Thread(target=serve)
        t.start()
        with socket.create_connection(("localhost", port), timeout=5) as c:
            c.sendall(b"hello")
        t.join(5)
    assert accepted == [b"hello"]
