/**
 * One run spread over S optimizer servers: {@link dev.roadless.optimizer.shard.ShardPlan} (the pure
 * plan: which elements of which tensor each shard holds, and each shard's run spec), {@link
 * dev.roadless.optimizer.shard.ShardedSession} (one replica's loop against every shard at once,
 * presenting one run) and {@link dev.roadless.optimizer.shard.ShardedState} (one state stream from
 * S shard states and back). Every shard is an ordinary run on an unmodified optimizer server.
 */
package dev.roadless.optimizer.shard;
