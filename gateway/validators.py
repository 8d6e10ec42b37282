"""attrs field validators shared by the configuration classes; errors name the field."""

from __future__ import annotations

import math
from typing import Any

import attrs

from gateway.errors import ConfigError


def positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """A finite number above zero."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{attribute.name} must be a positive number, got {value!r}")


def non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """A finite number, zero or above."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{attribute.name} must be a number >= 0, got {value!r}")


def positive_int(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    """An integer of at least one."""
    if type(value) is not int or value < 1:
        raise ConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")
