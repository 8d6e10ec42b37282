"""pytest plugin: the `binance_simulator` fixture (filled in by the simulator issue)."""
