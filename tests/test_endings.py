"""How a connection session's ending is read (`gateway.runtime.endings.classify`): from
the whole exception group the session's nursery raised, never from its first leaf."""

from __future__ import annotations

import ssl

import trio
import trio_websocket
import wsproto.utilities

from gateway import SubscriptionError
from gateway.runtime.endings import EndKind, SessionEnded, classify
from gateway.runtime.exception_groups import leaves


async def test_classify_reads_the_whole_group_never_only_its_first_leaf() -> None:
    closed = trio_websocket.ConnectionClosed(trio_websocket.CloseReason(1008, "Too many requests"))
    no_reply = SubscriptionError(None, "connection closed before the reply", 3)
    nested = ExceptionGroup("session", [no_reply, ExceptionGroup("reader", [closed])])
    ending = classify(nested)
    assert ending.kind is EndKind.RATE_LIMITED and ending.cause is closed
    race = wsproto.utilities.LocalProtocolError("Event Pong(payload=b'') cannot be sent")
    assert classify(ExceptionGroup("s", [race, OSError("reset")])).kind is EndKind.RECONNECT
    bug = KeyError("oops")
    assert classify(ExceptionGroup("s", [closed, bug])).kind is EndKind.BUG


async def test_cancellation_with_network_errors_reraises_only_the_cancellation() -> None:
    cancelled = trio.Cancelled._create(source="explicit")  # as a cancelled scope raises it
    race = wsproto.utilities.LocalProtocolError("Event Pong(...) cannot be sent")
    ending = classify(BaseExceptionGroup("s", [cancelled, race]))
    assert ending.kind is EndKind.CANCELLED
    assert ending.reraise is not None and leaves(ending.reraise) == [cancelled]


def test_network_failures_reconnect_and_a_1008_close_slows_down() -> None:
    closed = trio_websocket.ConnectionClosed(trio_websocket.CloseReason(1011, "x"))
    hand_made_tls = ssl.SSLError("made by hand: no reason attribute")
    for exc in (OSError("reset"), trio.BrokenResourceError(), trio.TooSlowError(),
                hand_made_tls, SessionEnded("rotation"), closed):  # fmt: skip
        assert classify(exc).kind is EndKind.RECONNECT, exc
    penalty = trio_websocket.ConnectionClosed(trio_websocket.CloseReason(1008, "slow down"))
    assert classify(penalty).kind is EndKind.RATE_LIMITED


def test_anything_else_is_a_bug_with_its_cause() -> None:
    bug = ZeroDivisionError("oops")
    ending = classify(ExceptionGroup("s", [OSError("reset"), bug]))
    assert ending.kind is EndKind.BUG and ending.cause is bug


def test_a_tls_error_says_so_even_without_the_ssl_module_s_attributes() -> None:
    reason = classify(ssl.SSLError("bad record")).reason
    assert reason.startswith("TLS error: ") and "bad record" in reason
    unverified = ssl.SSLCertVerificationError("verify failed")  # no verify_message set
    assert "certificate verify failed: verify failed" in classify(unverified).reason
