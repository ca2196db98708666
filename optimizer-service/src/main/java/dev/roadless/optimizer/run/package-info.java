/**
 * The serving protocol around one run's Schedule-Free state, on the run's own types ({@link
 * dev.roadless.optimizer.run.RunConfig}; no wire types).
 *
 * <p>{@link dev.roadless.optimizer.run.Run} is the face: a push is checked once on its header
 * ({@code checkPush}), then goes to the {@code SyncBarrier} (held until every replica has pushed;
 * the last push forms the mean with {@link dev.roadless.optimizer.core.ReplicaMean}) or the {@code
 * AsyncLedger} (staleness and idempotent answers). A step detaches the current TRAIN snapshot, runs
 * the kernel (handing y to the push's {@link dev.roadless.optimizer.run.ParameterSink}s as it
 * writes it, where there are any), publishes y of the new step as a view of the state ({@code
 * TrainPublication}, reference-counted {@link dev.roadless.optimizer.run.ParameterSnapshot}s), and
 * wakes the {@code StepWaiters}. Gradient arrays come from {@code GradientBuffers}; refusals are
 * built in {@link dev.roadless.optimizer.run.Refusals}. Every mutation happens under the run's lock
 * and either completes or changes nothing.
 */
package dev.roadless.optimizer.run;
