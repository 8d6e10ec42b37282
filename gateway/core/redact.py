"""Credentials never leave the process: URLs and texts with secrets masked for display.

Everything the gateway prints, logs, reports or puts in a repr goes through these:
userinfo in a URL (``wss://user:pass@host``) and secret-looking query parameters
(``apiKey``, ``signature``, ``token``, ...) are replaced by ``***``. `split_credentials`
takes the user name and password out of a URL, for a client that sends them apart.
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
    """``url`` with its userinfo's password (or a lone user name) and secret parameters masked.

    ``user:pass@`` keeps the user name (it names the account); a lone ``token@`` is
    masked whole (it may be a key). Text that does not parse as ``scheme://...`` (no
    scheme, a port that is not a number, unbalanced brackets) is masked up to its last
    ``@``: a password with an unencoded ``/``, ``?`` or ``#`` looks like that. After an
    all-digit password such a character parses as a port and a path or fragment, which
    cannot be told from a real one; the configuration validators reject those URLs (and
    show them masked up to the last ``@``).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return mask_to_last_at(url)
    if not parts.scheme or not url[len(parts.scheme) :].startswith("://"):
        return mask_to_last_at(url)
    netloc = parts.netloc
    if netloc.endswith(":") and "@" in url:
        return mask_to_last_at(url)  # an empty port: a password that starts with "/", "?", "#"
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if sep else f"{MASK}@{hostport}"
    query = _mask_params(parts.query)
    fragment = _mask_params(parts.fragment)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _mask_params(text: str) -> str:
    """``k=v&...`` with the values of secret-looking keys masked (other text unchanged)."""
    if "=" not in text:
        return text
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    if not any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
        return text
    return "&".join(f"{k}={MASK}" if k.lower() in _SECRET_PARAMS else f"{k}={v}" for k, v in pairs)


def mask_to_last_at(url: str) -> str:
    """A URL that does not parse: mask everything up to its last ``@`` (without one it
    holds no userinfo, and is shown as it is)."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    if "@" in rest:
        rest = f"{MASK}@{rest.rpartition('@')[2]}"
    return f"{head}{sep}{rest}"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its userinfo, and the user name and password it held (decoded).

    ``("https://host/x", "user", "pass")`` for ``https://user:pass@host/x``; ``None`` for
    a part that is absent. A URL that does not parse is returned as it is.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    return bare, urllib.parse.unquote(user), urllib.parse.unquote(password) if sep else None


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted and every one of ``secrets`` masked."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out
