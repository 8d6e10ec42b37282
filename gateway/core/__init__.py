"""The sans-I/O core: codec, stream names, candles, stop-losses, books, backoff, limits.

Nothing in this package imports trio or touches a socket; time is passed in.
"""
