package dev.roadless.checkpoint.remote;

import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.Resilience;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.Channel;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The checkpoint service's client of one trainer replica's control API. Both calls it makes are
 * read-only and deterministic for a given step, so UNAVAILABLE is retried with backoff behind a
 * circuit breaker; each attempt has the options' wait deadline (the trainer may wait for min_step,
 * then forwards batches). What finally fails is translated by {@link Upstream#trainer}. The caller
 * owns the channel.
 */
public final class TrainerClient {
  private final int index;
  private final String target;
  private final TrainerServiceGrpc.TrainerServiceBlockingStub stub;
  private final ClientOptions options;
  private final Resilience resilience;

  /**
   * @param index this trainer's position in the service's trainer list (reported as {@code replica}
   *     in errors)
   * @param target its address, for messages and the manifest
   */
  public TrainerClient(Channel channel, int index, String target, ClientOptions options) {
    this.index = index;
    this.target = target;
    this.stub = TrainerServiceGrpc.newBlockingStub(channel);
    this.options = options;
    this.resilience = Resilience.of("roadless-trainer-" + index, options);
  }

  public int index() {
    return index;
  }

  public String target() {
    return target;
  }

  /** BatchNorm statistics at the request's parameters (see the trainer proto). */
  public ComputeBatchNormStatisticsResponse computeBatchNormStatistics(
      ComputeBatchNormStatisticsRequest request) {
    return call(() -> withDeadline().computeBatchNormStatistics(request));
  }

  /** Hold-out loss and accuracy (see the trainer proto). */
  public EvaluateResponse evaluate(EvaluateRequest request) {
    return call(() -> withDeadline().evaluate(request));
  }

  private TrainerServiceGrpc.TrainerServiceBlockingStub withDeadline() {
    return stub.withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS);
  }

  private <T> T call(Supplier<T> attempt) {
    try {
      return resilience.call(attempt);
    } catch (RuntimeException e) {
      throw Upstream.trainer(index, target, e);
    }
  }
}
