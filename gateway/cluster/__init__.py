"""Past one process: gateway workers publishing to Redis Streams (docs/cluster.md).

- `gateway.cluster.parent`: ``gateway cluster``, the parent that supervises the workers;
- `gateway.cluster.worker`: one worker, a full gateway for its share of the symbols;
- `gateway.cluster.publisher`, `gateway.cluster.wire`: how events become stream entries;
- `gateway.cluster.consumer`: `open_remote_feed`, reading them from any trio program;
- `gateway.cluster.positions`, `gateway.cluster.keeper`: positions kept in Redis, each
  stop fired exactly once;
- `gateway.cluster.hashing`: which worker owns which symbol;
- `gateway.cluster.redis_server`: a private ``redis-server`` for tests and the default run.
"""
