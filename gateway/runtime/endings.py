"""What a connection session's ending means: the one place that decides.

A session ends with whatever its nursery raised: one exception, or a nested group
of them (the reader, a SUBSCRIBE waiting for its reply and the receive loop often
fail together when a socket closes). `classify` reads the whole group, never just
its first leaf:

- any `trio.Cancelled` (or other non-`Exception`: KeyboardInterrupt, SystemExit)
  inside: the caller re-raises `Ending.reraise` (the group without the network
  errors that came with it);
- any exception that is not a network, protocol or control failure: a bug of ours
  (`EndKind.BUG`), surfaced as `InternalError` with the cause chained;
- a 1008 close (the exchange's rate penalty): `EndKind.RATE_LIMITED`;
- anything else (resets, refused connects, TLS, handshake, wsproto protocol errors,
  closes, timeouts, control replies that never came): `EndKind.RECONNECT`.
"""

from __future__ import annotations

import enum
import ssl

import attrs
import trio
import wsproto.utilities
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError

from gateway.core.redact import redact_text
from gateway.errors import SubscriptionError
from gateway.runtime.exception_groups import leaves


class SessionEnded(Exception):
    """Internal: the session was ended on purpose (rotation, silence); reconnect."""


#: Leaves that mean "the network or the peer ended this session": reconnect.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, DNS, ssl.SSLError
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,  # connect or handshake past its deadline
    ConnectionClosed,
    HandshakeError,
    wsproto.utilities.ProtocolError,  # incl. LocalProtocolError of trio-websocket #184
    SubscriptionError,  # no reply, or the socket closed before it
    SessionEnded,
)

RATE_PENALTY = 1008  # policy violation: Binance's "Too many requests"


class EndKind(enum.Enum):
    """How the connection actor proceeds after a session ends."""

    RECONNECT = "reconnect"
    RATE_LIMITED = "rate_limited"
    CANCELLED = "cancelled"
    BUG = "bug"


@attrs.frozen
class Ending:
    """A classified session ending: what to do, a one-line reason, the telling leaf."""

    kind: EndKind
    reason: str
    cause: BaseException
    #: For CANCELLED: what to re-raise (cancellation, and any bug that came with it).
    reraise: BaseException | None = None


def classify(exc: BaseException) -> Ending:
    """Classify whatever a session raised (see the module docstring)."""
    found = leaves(exc)
    if any(not isinstance(e, Exception) for e in found):  # Cancelled, KeyboardInterrupt...
        rest: BaseException | None = exc
        if isinstance(exc, BaseExceptionGroup):
            _, rest = exc.split(NETWORK_ERRORS)  # consequences of being cancelled mid-close
        assert rest is not None
        return Ending(EndKind.CANCELLED, "cancelled", exc, reraise=rest)
    bugs = [e for e in found if not isinstance(e, NETWORK_ERRORS)]
    if bugs:
        reason = redact_text(f"unexpected {type(bugs[0]).__name__}: {bugs[0]}")
        return Ending(EndKind.BUG, reason, bugs[0])
    cause = min(found, key=_rank)
    if isinstance(cause, ConnectionClosed) and _close_code(cause) == RATE_PENALTY:
        return Ending(EndKind.RATE_LIMITED, describe(cause), cause)
    return Ending(EndKind.RECONNECT, describe(cause), cause)


def _close_code(exc: ConnectionClosed) -> int | None:
    reason = exc.reason
    return int(reason.code) if reason is not None and reason.code is not None else None


def _rank(exc: BaseException) -> int:
    """Which leaf best explains the ending (lowest first): the peer's own words first."""
    if isinstance(exc, ConnectionClosed):
        return 0 if _close_code(exc) not in (None, 1006) else 3
    if isinstance(exc, HandshakeError | OSError | trio.TooSlowError):
        return 1
    if isinstance(exc, SessionEnded):
        return 2
    if isinstance(exc, SubscriptionError):
        return 4
    return 5


def _tls_text(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(getattr(exc, "verify_message", None) or _last_arg(exc))
        hint = ("the certificate is for another name: connect by one it covers"
                if "mismatch" in message.lower() else "a private CA? trust it with ca_file")
        return f"TLS error: certificate verify failed: {message} ({hint})"
    # The ssl module sets ``reason``; an SSLError made elsewhere may not have it.
    return f"TLS error: {getattr(exc, 'reason', None) or _last_arg(exc)}"


def _last_arg(exc: BaseException) -> str:
    """An OSError's message: its last argument (after the errno, if any)."""
    return str(exc.args[-1]) if exc.args else type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for logs and errors, credentials masked."""
    if isinstance(exc, ConnectionClosed):
        reason = exc.reason
        if reason is None or reason.code in (None, 1006):
            text = "closed without a close frame (1006)"
        else:
            text = f"closed by the exchange: {reason.code} {reason.reason or reason.name}"
    elif isinstance(exc, ConnectionRejected):
        text = f"handshake rejected: HTTP {exc.status_code}"
    elif isinstance(exc, ssl.SSLError):
        text = _tls_text(exc)
    elif isinstance(exc, trio.BrokenResourceError) and isinstance(exc.__cause__, ssl.SSLError):
        text = _tls_text(exc.__cause__)  # trio's SSLStream wraps the handshake's failure
    elif isinstance(exc, OSError):
        inner = leaves(exc.__cause__)[0] if exc.__cause__ is not None else None
        if exc.strerror is None and isinstance(inner, OSError) and inner.strerror:
            exc = inner  # trio's "all attempts to connect ... failed": say why
        text = exc.strerror or str(exc) or type(exc).__name__
    elif isinstance(exc, trio.TooSlowError):
        text = "timed out"
    elif isinstance(exc, wsproto.utilities.ProtocolError):
        text = f"protocol error: {exc}"
    elif isinstance(exc, SubscriptionError):
        text = exc.message
    else:
        text = str(exc) or type(exc).__name__
    return redact_text(text)
