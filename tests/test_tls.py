"""The client TLS context and error wording (`gateway.runtime.tls`); the handshake itself,
SNI and host-name checks against the embedded exchange are in tests/test_simulator_tls.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gateway.runtime.tls import client_ssl_context, first_words


def test_the_client_context_verifies_and_checks_host_names() -> None:
    ctx = client_ssl_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        client_ssl_context(str(bad))


def test_first_words_finds_the_message_down_the_causes() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
    middle = OSError("")
    middle.__cause__ = inner
    outer = ConnectionError("")
    outer.__cause__ = middle
    assert "self-signed" in first_words(outer)


def test_first_words_of_a_looping_chain_ends() -> None:
    a, b = RuntimeError(""), RuntimeError("")
    a.__context__, b.__context__ = b, a  # a loop through __context__
    assert first_words(a) == ""
