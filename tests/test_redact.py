"""Redaction: credentials in URLs and texts are masked for display, never shown."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.core.redact import (
    MASK,
    redact_text,
    redact_url,
    split_credentials,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://user:S3cret@host:9443/x", "wss://user:***@host:9443/x"),
        ("wss://token@host", "wss://***@host"),  # a lone user name may be a key
        ("wss://u:p%40ss@host", "wss://u:***@host"),
        ("https://h/api?apiKey=k1&symbol=BTCUSDT", "https://h/api?apiKey=***&symbol=BTCUSDT"),
        ("https://h/cb#access_token=t1", "https://h/cb#access_token=***"),
        ("wss://h/stream?streams=btcusdt@trade", "wss://h/stream?streams=btcusdt@trade"),
        ("wss://h:9443/ws/btcusdt@trade", "wss://h:9443/ws/btcusdt@trade"),
        ("wss://stream.binance.com:9443", "wss://stream.binance.com:9443"),
        ("127.0.0.1:9000", "127.0.0.1:9000"),
        ("not a url", "not a url"),
        ("ws://h:abc", "ws://h:abc"),  # a bad port, but no userinfo to hide
        ("", ""),
    ],
)
def test_redact_url_masks_credentials_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://user:pa/ss@host", "ws://***@host"),  # an unencoded "/": "pa" is no port
        ("ws://user:pa#ss@host", "ws://***@host"),
        ("ws://user:pa?ss@host", "ws://***@host"),
        ("ws://user:/pass@host", "ws://***@host"),  # an empty port
        ("ws://user:[pass@host", "ws://***@host"),  # unbalanced brackets: urlsplit raises
        ("user:pass@host:9000", "***@host:9000"),  # no scheme at all
    ],
)
def test_a_url_that_does_not_parse_is_masked_up_to_its_last_at(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_split_credentials_gives_the_bare_url_and_the_decoded_parts() -> None:
    assert split_credentials("https://us%20er:p%40ss@h:1/a?b=1") == (
        "https://h:1/a?b=1", "us er", "p@ss",
    )  # fmt: skip
    assert split_credentials("https://token@h") == ("https://h", "token", None)
    assert split_credentials("https://h/x@y") == ("https://h/x@y", None, None)


def test_redact_text_masks_every_url_and_the_given_secrets() -> None:
    text = "ConnectError('wss://u:pw1234@h/stream') after pw1234; see https://t0k3n@x/"
    out = redact_text(text, ["pw1234"])
    assert "pw1234" not in out and "t0k3n" not in out
    assert out == f"ConnectError('wss://u:{MASK}@h/stream') after {MASK}; see https://{MASK}@x/"


_PASSWORD = st.text(st.characters(codec="ascii", categories=["L", "N", "P", "S"]), min_size=4)


@given(_PASSWORD)
def test_a_percent_encoded_password_never_survives(password: str) -> None:
    encoded = urllib.parse.quote(password, safe="")
    url = f"wss://user:{encoded}@stream.example:9443/x"
    skeleton = f"wss://user:{MASK}@stream.example:9443/x"
    assume(encoded not in skeleton and password not in skeleton)
    shown = redact_url(url)
    assert shown == skeleton
    assert password not in redact_text(f"failed: {url!r}")


@given(_PASSWORD.filter(lambda p: "@" not in p))
def test_an_unencoded_password_never_survives_unless_it_looks_like_a_port(password: str) -> None:
    # "user:1234/rest@host" is a host, a port and a path: the validators reject it instead.
    cut = min((i for i in (password.find(c) for c in "/?#") if i >= 0), default=-1)
    assume(not (cut > 0 and password[:cut].isdigit()))
    url = f"wss://user:{password}@stream.example:9443"
    assume(password not in f"wss://user:{MASK}@stream.example:9443")
    assert password not in redact_url(url)
