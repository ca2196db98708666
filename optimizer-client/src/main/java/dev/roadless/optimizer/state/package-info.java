/**
 * The one serialised form of a run's optimizer state, shared by the optimizer's snapshots, its
 * ExportState/ImportState streams and the checkpoint service's state checkpoints: {@link
 * dev.roadless.optimizer.state.StateCodec} documents the layout, {@link
 * dev.roadless.optimizer.state.StateWriter} writes it and {@link
 * dev.roadless.optimizer.state.StateReader} reads and verifies it.
 */
package dev.roadless.optimizer.state;
