package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.OptimizerState;

/**
 * A run's full state for snapshots and export: its configuration, the digest of its initial values
 * and the optimizer's state.
 */
public record RunSnapshot(
    String id, RunConfig config, byte[] initialDigest, OptimizerState state) {}
