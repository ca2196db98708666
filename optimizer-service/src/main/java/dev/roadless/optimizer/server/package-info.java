/**
 * The gRPC adapters: validate, map wire messages to the run's types and back ({@code SpecMapping},
 * {@code HyperparameterMapping}, {@code ProtoMapping}), map errors (in the interceptor of {@code
 * dev.roadless.common.runtime}).
 *
 * <p>{@link dev.roadless.optimizer.server.OptimizerServer} is the public face: built with an
 * injected {@code ServerBuilder} ({@link dev.roadless.optimizer.server.OptimizerServer#builder}),
 * it restores snapshots, serves and drains. Behind it, {@code OptimizerGrpcService} binds the RPCs;
 * the tensor-heavy ones live in {@code TrainingCalls}, {@code PushStream} (one push: header check,
 * chunks checked as they arrive, commit) and {@code TrainStream} (a replica's Train stream and its
 * answers).
 */
package dev.roadless.optimizer.server;
