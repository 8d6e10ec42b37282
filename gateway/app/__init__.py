"""The command-line application: ``gateway run``, ``record`` and ``replay``.

One idea per module: `options` (what to connect to, from flags and a TOML file),
`demo` (the embedded exchange and the demonstration position), `tracker` (what
happened during a run), `snapshot` (a point-in-time picture of a run), `view` (the
live terminal view and plain lines, pure functions of a snapshot), `summary` (the
end-of-run summary and its JSON form), `session` (one run, start to finish),
`record` and `replay` (recordings in the ``binance-recorded`` line format).
"""
