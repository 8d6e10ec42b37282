"""The conformance runner's network guard: a client may reach 127.0.0.1 and nothing else
(no client package needed; nothing leaves the machine: the lookup is refused before any
DNS query, and a UDP connect sends no packet)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests._conformance import ROOT
from tests._conformance_runner import _is_loopback

PROBE = textwrap.dedent("""
    import socket
    from tests._conformance_runner import guard_network
    guard_network()
    socket.getaddrinfo("127.0.0.1", 80)
    socket.getaddrinfo("localhost", 80)
    for host in ("stream.binance.com", "api.binance.com.invalid"):
        try:
            socket.getaddrinfo(host, 443)
        except socket.gaierror:
            pass
        else:
            raise SystemExit(f"{host} was resolved")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except ConnectionRefusedError:
            pass
        else:
            raise SystemExit("a non-loopback connect went through")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", 9))
    print("guarded")
""")


def test_loopback_names() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", b"127.0.0.1", None):
        assert _is_loopback(host), host
    for host in ("api.binance.com", "10.0.0.1", "192.168.1.1", "8.8.8.8", "::ffff:1.2.3.4"):
        assert not _is_loopback(host), host


def test_guard_refuses_and_reports_other_hosts() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "guarded"
    assert sum('"refused"' in line for line in lines) == 3, lines


def test_a_client_skips_only_when_it_is_not_installed() -> None:
    import pytest

    from tests._conformance import require_client

    with pytest.raises(pytest.skip.Exception, match="no-such-client is not installed"):
        require_client("no_such_client", "no-such-client")
    # installed (pytest is) but the module named does not import: a failure, not a skip
    with pytest.raises(AssertionError, match=r"pytest \S+ is installed but"):
        require_client("pytest.no_such_module", "pytest")
    require_client("trio", "trio")  # installed and importable: nothing happens
