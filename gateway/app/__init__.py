"""The command-line application: ``gateway run``, ``record`` and ``replay``.

One idea per module: `options` (what to connect to, from flags and a TOML file),
`demo` (the demo's defaults and its stop-loss), `tracker` (what happened during a
run), `snapshot` (a point-in-time picture of a run), `view` (the live terminal view
and plain lines, pure functions of a snapshot), `output` (live or plain, driven by a
trio task), `summary` (the end-of-run summary and its JSON form), `connecting` (what a run
knows of its connections before the gateway is live), `session` (one run, start to
finish, with signal handling), `run` (the ``run`` command),
`recording` (the ``binance-recorded`` file format: writing with rotation, reading),
`record` and `replay` (the commands).
"""
