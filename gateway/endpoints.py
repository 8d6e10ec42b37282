"""The exchange's endpoints: stream hosts, their REST hosts, and `rest_url_for` to pair them.

Apart from the configuration classes because the embedded exchange and replay use them too.
"""

from __future__ import annotations

import urllib.parse

#: Production, market-data-only and test-network stream hosts.
BINANCE_URL = "wss://stream.binance.com:9443"
BINANCE_DATA_URL = "wss://data-stream.binance.vision"
TESTNET_URL = "wss://stream.testnet.binance.vision"
BINANCE_US_URL = "wss://stream.binance.us:9443"
#: Their REST endpoints (binance-market-streams.md 1.4; Binance.US: api.binance.us).
BINANCE_REST_URL = "https://api.binance.com"
BINANCE_DATA_REST_URL = "https://data-api.binance.vision"
TESTNET_REST_URL = "https://testnet.binance.vision"
BINANCE_US_REST_URL = "https://api.binance.us"
#: ``rest_url``'s default: the REST endpoint follows ``url`` (see `rest_url_for`).
REST_AUTO = "auto"

#: Known stream hosts (any of their documented ports) and the REST endpoint of each.
REST_FOR_STREAM_HOST: dict[str, tuple[str, tuple[int | None, ...]]] = {
    "stream.binance.com": (BINANCE_REST_URL, (None, 443, 9443)),
    "data-stream.binance.vision": (BINANCE_DATA_REST_URL, (None, 443, 9443)),
    "stream.testnet.binance.vision": (TESTNET_REST_URL, (None, 443, 9443)),
    "stream.binance.us": (BINANCE_US_REST_URL, (None, 443, 9443)),
}


def rest_url_for(ws_url: str) -> str:
    """The REST endpoint that goes with the stream endpoint ``ws_url``.

    A known Binance stream host gives its own REST host (`REST_FOR_STREAM_HOST`); any
    other host gives the same host and port (``ws`` -> ``http``, ``wss`` -> ``https``,
    credentials kept, path dropped), where the embedded exchange serves REST too. So
    REST never goes to a host the stream URL did not name (or a Binance one for it).
    """
    parts = urllib.parse.urlsplit(ws_url)
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:  # the url validator reports it; no guess here
        port = -1
    known = REST_FOR_STREAM_HOST.get(host)
    if known is not None and port in known[1]:
        return known[0]
    scheme = "https" if parts.scheme.lower() == "wss" else "http"
    return f"{scheme}://{parts.netloc}"
