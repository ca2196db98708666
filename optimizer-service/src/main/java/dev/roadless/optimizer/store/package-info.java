/**
 * Snapshots of optimizer state: {@link dev.roadless.optimizer.store.StateCodec} writes and reads an
 * {@link dev.roadless.optimizer.core.OptimizerState} in a versioned, checksummed little-endian
 * binary format.
 */
package dev.roadless.optimizer.store;
