/**
 * The shared-memory push transport for replicas on the server's host.
 *
 * <p>{@link dev.roadless.optimizer.transport.SharedMemoryTransport} is the face: it proves locality
 * (the probe file), creates one segment per (run, replica) in a directory of this process's own,
 * sweeps the directories of dead servers, and opens a {@link
 * dev.roadless.optimizer.transport.SegmentPush} for a push that names its segment. The push hands
 * the run its gradient where it lies ({@code SegmentGradient}: checked in place while pending, read
 * once by the replica mean) and gets y back through a sink the step kernel writes ({@code
 * SegmentSink}), falling back to a copy for a push without a step of its own. The layout and the
 * mapping are {@code dev.roadless.optimizer.shm} in optimizer-client, shared with the Java client.
 */
package dev.roadless.optimizer.transport;
