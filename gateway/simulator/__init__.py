"""A Binance-compatible market-stream exchange on loopback (WS + REST)."""
