"""A throwaway certificate authority for the embedded exchange's ``tls=True``.

Clients that insist on ``wss://`` / ``https://`` (cryptofeed, for one) can then be pointed at
it: the CA's certificate is written to a file (`ServerTls.ca_file`) they are told to trust,
and the server certificate covers ``127.0.0.1``, ``::1`` and ``localhost`` (plus the bound
host). Made with ``trustme`` (the trio project's test CA, on ``cryptography``).
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import trustme

__all__ = ["ServerTls", "throwaway_tls"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ANY = ("0.0.0.0", "::", "")


@attrs.frozen(slots=True)
class ServerTls:
    """The server's TLS context and the PEM files behind it (alive while in use)."""

    context: ssl.SSLContext  #: for the WebSocket side
    ca_file: str  #: the CA certificate clients trust
    cert_file: str  #: server certificate chain (for hypercorn)
    key_file: str  #: server private key (for hypercorn)


def _names(host: str) -> list[str]:
    """The names the server certificate is for: loopback, and ``host`` if it is another."""
    names = list(_LOOPBACK)
    if host not in _ANY and host not in names:
        try:
            names.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    return names


@contextmanager
def throwaway_tls(host: str) -> Iterator[ServerTls]:
    """A fresh CA and server certificate for ``host``; the files are removed on exit."""
    ca = trustme.CA(organization_name="gateway simulator (throwaway CA)")
    cert = ca.issue_cert(*_names(host))
    with tempfile.TemporaryDirectory(prefix="gateway-simulator-tls-") as tmp:
        d = Path(tmp)
        ca.cert_pem.write_to_path(str(d / "ca.pem"))
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        (d / "server.pem").write_bytes(chain)
        cert.private_key_pem.write_to_path(str(d / "server.key"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        yield ServerTls(context, str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key"))
