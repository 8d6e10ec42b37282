"""Gateway configuration: attrs classes, loaded from TOML or dicts through cattrs.

Validation happens at the edge; every error names the bad key, its value and what is
allowed (`ConfigError`). TOML, dicts and `open_gateway`'s keyword overrides all go
through one converter (`config_from_dict`, `evolve_config`); classes built directly
run the same field validators. Defaults follow the exchange's documented limits.
URLs are shown with their credentials masked, also in reprs.

The classes and their validators are in `gateway.config_classes`, the exchange's
endpoints in `gateway.endpoints`; both are re-exported here, where they always were.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from gateway.config_classes import GatewayConfig, PositionConfig, ReconnectConfig
from gateway.core.stop_loss import Side
from gateway.endpoints import (
    BINANCE_DATA_REST_URL,
    BINANCE_DATA_URL,
    BINANCE_REST_URL,
    BINANCE_URL,
    BINANCE_US_REST_URL,
    BINANCE_US_URL,
    REST_AUTO,
    REST_FOR_STREAM_HOST,
    TESTNET_REST_URL,
    TESTNET_URL,
    rest_url_for,
)
from gateway.errors import ConfigError

__all__ = [
    "BINANCE_DATA_REST_URL",
    "BINANCE_DATA_URL",
    "BINANCE_REST_URL",
    "BINANCE_URL",
    "BINANCE_US_REST_URL",
    "BINANCE_US_URL",
    "REST_AUTO",
    "REST_FOR_STREAM_HOST",
    "TESTNET_REST_URL",
    "TESTNET_URL",
    "GatewayConfig",
    "PositionConfig",
    "ReconnectConfig",
    "config_from_dict",
    "converter",
    "evolve_config",
    "load_config",
    "rest_url_for",
]


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _tuple_of_str(value: Any, _: Any) -> tuple[str, ...]:
        # "A,B" is ("A", "B"), as a TOML string or a keyword; any other iterable of strings.
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
            raise TypeError(f"expected a list of strings, got {value!r}")
        items = tuple(value)
        for v in items:
            if not isinstance(v, str):
                raise TypeError(f"expected a string, got {v!r}")
        return items

    def _strict_float(value: Any, _: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)

    def _strict_int(value: Any, _: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value

    def _strict_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value

    def _strict_str(value: Any, _: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value

    def _side(value: Any, _: Any) -> Side:
        try:
            return Side[str(value).upper()]
        except KeyError:
            raise ValueError(f"side must be LONG or SHORT, got {value!r}") from None

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _tuple_of_str)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(Side, _side)
    conv.register_unstructure_hook(Side, lambda s: s.name)
    for cls in (ReconnectConfig, PositionConfig, GatewayConfig):  # inner tables first
        conv.register_structure_hook(cls, _table_hook(conv, cls))
    return conv


def _table_hook(conv: cattrs.Converter, cls: type[Any]) -> Any:
    """Structure ``cls`` from a mapping (an instance passes as it is); else name the keys."""
    inner = make_dict_structure_fn(cls, conv)
    keys = ", ".join(f.name for f in attrs.fields(cls))

    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a table (dict) with keys {keys}, got {value!r}")
        return inner(value, cls)

    return hook


converter = _make_converter()


def config_from_dict(data: Mapping[str, Any]) -> GatewayConfig:
    """Build a `GatewayConfig` from plain data; raises `ConfigError` naming each bad key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"the configuration must be a table (dict) of settings, got {data!r}")
    try:
        return converter.structure(data, GatewayConfig)
    except (ClassValidationError, IterableValidationError) as exc:
        raise ConfigError("; ".join(_explain(exc, []))) from None
    except ForbiddenExtraKeysError as exc:  # pragma: no cover - wrapped by detailed validation
        raise ConfigError(_extra_keys_message(exc, [])) from None


def evolve_config(config: GatewayConfig, **overrides: Any) -> GatewayConfig:
    """``config`` with ``overrides`` (field names) replaced, converted and checked like TOML.

    Values may be plain data (``symbols="BTCUSDT"``, ``reconnect={"max_attempts": 3}``)
    or the classes themselves (``reconnect=ReconnectConfig(...)``); raises `ConfigError`.
    """
    data = converter.unstructure(config)
    data.update((key, converter.unstructure(value)) for key, value in overrides.items())
    return config_from_dict(data)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path``; `ConfigError` (one line) if unreadable or not TOML."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read a TOML file into a `GatewayConfig`; a ``[gateway]`` table is used if present."""
    data = read_toml(path)
    table = data.get("gateway", data)
    if not isinstance(table, dict):
        raise ConfigError("[gateway] must be a table")
    return config_from_dict(table)


_ALLOWED_KEYS = {
    "GatewayConfig": [f.name for f in attrs.fields(GatewayConfig)],
    "ReconnectConfig": [f.name for f in attrs.fields(ReconnectConfig)],
    "PositionConfig": [f.name for f in attrs.fields(PositionConfig)],
}


def _extra_keys_message(exc: ForbiddenExtraKeysError, path: list[str]) -> str:
    allowed = _ALLOWED_KEYS.get(exc.cl.__name__, [])
    keys = ", ".join(sorted(exc.extra_fields))
    where = ".".join(path) + "." if path else ""
    return f"unknown key {where}{keys}; allowed: {', '.join(allowed)}"


def _explain(exc: BaseException, path: list[str]) -> list[str]:
    """Flatten cattrs' nested validation errors into 'key.path: problem' lines."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [_extra_keys_message(exc, path)]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        out: list[str] = []
        for sub in exc.exceptions:
            note = next(iter(getattr(sub, "__notes__", []) or []), None)
            seg = path
            if note is not None and hasattr(note, "name"):
                seg = [*path, str(note.name)]
            elif note is not None and hasattr(note, "index"):
                seg = [*path, f"[{note.index}]"]
            out.extend(_explain(sub, seg))
        return out
    if not path and isinstance(exc, ConfigError):
        return [str(exc)]  # a field validator's message names its field already
    key = ".".join(path).replace(".[", "[") or "config"
    return [f"{key}: {exc}"]
