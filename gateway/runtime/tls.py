"""The client TLS context for ``wss://`` streams and ``https://`` REST: the system's trust
store, plus the CA of ``GatewayConfig.ca_file`` when one is given (e.g. the embedded
exchange's throwaway CA under ``tls=True``)."""

from __future__ import annotations

import ssl

__all__ = ["client_ssl_context", "first_words"]


def client_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context (hostnames checked) that also trusts ``ca_file``'s CAs."""
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def first_words(exc: BaseException) -> str:
    """The first non-empty message along ``exc``'s causes: httpx on trio says nothing of
    a refused certificate (``ConnectError('')``) but its cause's cause does."""
    seen: BaseException | None = exc
    for _ in range(10):  # a bounded walk: chains can loop through __context__
        if seen is None:
            break
        if str(seen):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return ""
