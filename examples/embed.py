"""Embedding the gateway in a trio program: trades, closed candles and a stop-loss."""

import trio

from gateway import CandleClosed, StopTriggered, Trade, open_gateway


async def close_position(stop: StopTriggered) -> None:
    # Send the closing order here; make it idempotent (it is retried until it succeeds).
    print(f"closing {stop.position_id}: stop {stop.stop_price} hit at {stop.trigger_price}")


async def main(url: str = "wss://stream.binance.com:9443", seconds: float = 10) -> None:
    async with open_gateway(
        symbols=["BTCUSDT", "ETHUSDT"],
        streams=["trade", "kline_1m"],
        url=url,
        close_hook=close_position,
    ) as gw:
        gw.on_candle_closed(lambda ev: print("candle", ev.symbol, ev.candle.close))
        with gw.subscribe("BTCUSDT", Trade) as trades:
            first = await trades.receive()
        gw.open_position("BTCUSDT", "LONG", entry_price=first.price, stop_pct=0.01)
        seen: dict[str, int] = {}
        with trio.move_on_after(seconds), gw.subscribe(kinds=[Trade, CandleClosed]) as events:
            async for event in events:  # every event, per symbol, in order: your strategy
                seen[event.symbol] = seen.get(event.symbol, 0) + 1
        print("events", seen)
        print(gw.stats().symbols["BTCUSDT"].latency_us.receive_to_handled)


if __name__ == "__main__":
    trio.run(main)
