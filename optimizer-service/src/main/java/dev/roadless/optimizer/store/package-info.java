/**
 * Snapshots of optimizer state: {@link dev.roadless.optimizer.store.SnapshotStore} keeps one file
 * per run, in the one state form of {@link dev.roadless.optimizer.state.StateCodec}, replaced
 * atomically.
 */
package dev.roadless.optimizer.store;
