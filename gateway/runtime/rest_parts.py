"""The gateway's REST side, built from its config: the backfiller (gap backfills, kline
warm-up, the listing check's weight) and the price fallback that polls through it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from gateway.config import GatewayConfig
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, Need
from gateway.core.backoff import ReconnectPolicy
from gateway.runtime.backfill import Backfiller
from gateway.runtime.fallback import PriceFallback
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime

__all__ = ["rest_parts"]


def rest_parts(
    config: GatewayConfig, states: Mapping[str, SymbolRuntime], publisher: Publisher, *,
    deliver: Callable[[str, BackfillResult], None], need: Callable[[BackfillRequest], Need],
    rng: random.Random | None,
) -> tuple[Backfiller | None, PriceFallback | None]:  # fmt: skip
    """The backfiller (None without ``rest_url``) and the price fallback over ``states``
    (None without a backfiller or with ``fallback_after = 0``); neither started yet."""
    backfiller = (
        Backfiller(
            config.rest_url, deliver, timeout=config.rest_timeout,
            max_ids=config.backfill_max_ids, weight_per_minute=config.rest_weight_per_minute,
            retry=ReconnectPolicy(0.5, 2.0, 30.0, config.rest_retries),
            ca_file=config.ca_file, need=need,
            rng=rng,
        )
        if config.rest_url
        else None
    )  # fmt: skip
    fallback = (
        PriceFallback(
            states, backfiller, after=config.fallback_after,
            interval=config.fallback_interval,
            on_error=lambda sym, exc: publisher.report_error("fallback", exc, sym),
        )
        if backfiller is not None and config.fallback_after > 0
        else None
    )  # fmt: skip
    return backfiller, fallback
