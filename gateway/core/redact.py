"""Credentials never leave the process: URLs and texts with secrets masked for display.

Everything the gateway prints, logs, reports or puts in a repr goes through these:
userinfo in a URL (``wss://user:pass@host``) and secret-looking query parameters
(``apiKey``, ``signature``, ``token``, ...) are replaced by ``***``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"

_SECRET_PARAMS = frozenset(
    {"apikey", "api_key", "key", "secret", "api_secret", "signature", "token", "password",
     "passwd", "pass", "listenkey", "auth", "access_token"}
)  # fmt: skip
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo and secret query values masked.

    A user name alone is kept (it names the account, not the key); anything that is
    not a parseable URL is returned unchanged.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if sep else f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = "&".join(
                f"{k}={MASK}" if k.lower() in _SECRET_PARAMS else f"{k}={v}" for k, v in pairs
            )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted and every one of ``secrets`` masked."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out
