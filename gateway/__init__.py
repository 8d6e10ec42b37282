"""An actor-based, multi-symbol Binance market-data gateway for trio."""

from gateway._version import __version__

__all__ = ["__version__"]
