"""The gateway's error hierarchy: one root, each error says what was wrong and what to do."""

from __future__ import annotations

from gateway.core.redact import redact_text


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class DecodeError(GatewayError, ValueError):
    """A frame could not be decoded; ``excerpt`` holds its first characters."""

    def __init__(self, reason: str, frame: str | bytes | object) -> None:
        self.reason = reason
        self.excerpt = _excerpt(frame)
        super().__init__(f"{reason}: {self.excerpt!r}")


class InvalidStreamName(GatewayError, ValueError):
    """A stream name or one of its parts (symbol, interval, depth level) is not valid."""


class ConfigError(GatewayError, ValueError):
    """The configuration names a bad key or value; the message says which and what is allowed.

    URLs quoted in the message are shown with their credentials masked, whatever the
    value's type was (a bytes or list value is quoted as its repr).
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))


class SubscriptionError(GatewayError):
    """The exchange refused a SUBSCRIBE / UNSUBSCRIBE / LIST request (code and message attached)."""

    def __init__(self, code: int | None, message: str, request_id: int | str | None = None) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f"exchange refused request {request_id!r}: code {code}: {message}")


class ConnectionFailed(GatewayError):
    """The gateway could not (re)connect after its maximum number of attempts."""


class ConnectionLost(GatewayError):
    """One session of a connection ended (or never opened); the gateway reconnects.

    Given to the error callbacks once per failed session; ``__cause__`` is the network
    or protocol error behind it. ``opened`` is False when the socket never opened.
    """

    def __init__(
        self, conn_id: str, endpoint: str, reason: str, *, opened: bool, attempt: int,
        max_attempts: int | None, retry_in: float | None,
    ) -> None:  # fmt: skip
        self.conn_id = conn_id
        self.endpoint = endpoint
        self.reason = reason
        self.opened = opened
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.retry_in = retry_in
        what = "connection lost to" if opened else "could not connect to"
        #: What happened, without the attempt count: ``could not connect to H:P (why)``.
        self.summary = f"{what} {endpoint} ({reason})"
        text = f"[{conn_id}] {self.summary}; attempt {attempt}"
        if max_attempts is not None:
            text += f" of {max_attempts}"
        if retry_in is not None:
            text += f", retrying in {retry_in:.2f} s"
        super().__init__(text)


class InternalError(GatewayError):
    """A bug in the gateway itself (the original exception is chained as the cause).

    Raised instead of letting an unexpected exception of ours escape unlabelled;
    please report it with the traceback.
    """


class RateLimitExceeded(GatewayError):
    """An action was recorded although its rate limiter had no free slot; wait ``retry_after``."""

    def __init__(self, limit: int, window: float, retry_after: float) -> None:
        self.limit = limit
        self.window = window
        self.retry_after = retry_after
        super().__init__(
            f"more than {limit} actions within {window} s; the next slot frees in "
            f"{retry_after:.6f} s (call delay_until_free() or try_acquire() first)"
        )


class UnknownSymbol(GatewayError, KeyError):
    """A symbol this gateway does not run (``known``: the ones it does)."""

    def __init__(self, symbol: str, known: tuple[str, ...]) -> None:
        super().__init__(f"symbol {symbol!r} is not in this gateway; it has: "
                         f"{', '.join(known) or 'none'}")  # fmt: skip
        self.symbol = symbol
        self.known = known

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PositionError(GatewayError, ValueError):
    """A stop-loss book call names an unknown position, bad stop values, or a wrong state."""


class CandleError(GatewayError, ValueError):
    """A kline was given to a candle buffer of another symbol or interval."""


def _excerpt(frame: object, limit: int = 120) -> str:
    if isinstance(frame, bytes | bytearray | memoryview):
        text = bytes(frame[: limit * 4]).decode("utf-8", "replace")
    else:
        text = frame if isinstance(frame, str) else repr(frame)
    return text if len(text) <= limit else text[:limit] + "…"
