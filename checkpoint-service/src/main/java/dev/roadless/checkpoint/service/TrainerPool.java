package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import io.grpc.Context;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;

/**
 * The trainer replicas a checkpoint service asks for BatchNorm statistics and hold-out metrics, all
 * at one step k of x. Every answer must be for step k itself; one for a later step (the run moved
 * on) raises {@link StepMoved}.
 */
final class TrainerPool {
  private final List<TrainerClient> trainers;
  private final ExecutorService executor;

  /**
   * @param trainers in configuration order; index 0 evaluates
   * @param executor runs the replicas' calls in parallel
   */
  TrainerPool(List<TrainerClient> trainers, ExecutorService executor) {
    this.trainers = List.copyOf(trainers);
    this.executor = executor;
  }

  boolean isEmpty() {
    return trainers.isEmpty();
  }

  /** The run moved past step {@code expected} while the checkpoint was being taken. */
  static final class StepMoved extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final long expected;
    final long observed;

    StepMoved(long expected, long observed) {
      super("expected step " + expected + ", got " + observed, null, false, false);
      this.expected = expected;
      this.observed = observed;
    }
  }

  /** One trainer's answer with where it came from. */
  record Answer(TrainerClient trainer, ReplicaStatistics statistics) {}

  /**
   * BatchNorm statistics at x_k from every trainer that gets batches, in parallel. EMA: every
   * replica forwards {@code batches}; PRECISE: the batches are split as evenly as possible.
   */
  List<Answer> statistics(String runId, long step, BatchNormSettings bn) {
    List<CompletableFuture<Answer>> calls = new ArrayList<>();
    int n = trainers.size();
    for (int i = 0; i < n; i++) {
      TrainerClient t = trainers.get(i);
      int batches =
          bn.getMode() == BatchNormMode.BATCH_NORM_MODE_PRECISE
              ? bn.getBatches() / n + (i < bn.getBatches() % n ? 1 : 0)
              : bn.getBatches();
      if (batches == 0) {
        continue;
      }
      ComputeBatchNormStatisticsRequest request =
          ComputeBatchNormStatisticsRequest.newBuilder()
              .setRunId(runId)
              .setSequence(Sequence.SEQUENCE_EVAL)
              .setMinStep(step)
              .setMode(
                  bn.getMode() == BatchNormMode.BATCH_NORM_MODE_PRECISE
                      ? BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE
                      : BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_EMA)
              .setBatches(batches)
              .setBatchSize(bn.getBatchSize())
              .setDataSeed(bn.getDataSeed())
              .build();
      // The caller's deadline and cancellation follow the calls onto the executor's threads.
      calls.add(
          CompletableFuture.supplyAsync(
              () -> new Answer(t, ReplicaStatistics.of(t.computeBatchNormStatistics(request))),
              Context.currentContextExecutor(executor)));
    }
    List<Answer> answers = join(calls);
    Set<Integer> replicas = new HashSet<>();
    for (Answer a : answers) {
      if (a.statistics().step() != step) {
        throw new StepMoved(step, a.statistics().step());
      }
      if (!replicas.add(a.statistics().replica())) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_TRAINERS_NOT_CONFIGURED,
                "two trainer targets answer as replica "
                    + a.statistics().replica()
                    + "; their batches would overlap")
            .with("field", "trainer-targets")
            .build();
      }
    }
    return answers;
  }

  /**
   * Hold-out metrics at x_k on trainer 0: with the given statistics, or (null) with its training
   * buffers.
   */
  EvaluateResponse evaluate(String runId, long step, List<BatchNormLayerStatistics> statistics) {
    EvaluateRequest.Builder request =
        EvaluateRequest.newBuilder()
            .setRunId(runId)
            .setSequence(Sequence.SEQUENCE_EVAL)
            .setMinStep(step);
    if (statistics == null) {
      request.setUseTrainingStatistics(true);
    } else {
      request.addAllStatistics(statistics);
    }
    EvaluateResponse r = trainers.get(0).evaluate(request.build());
    if (r.getStep() != step) {
      throw new StepMoved(step, r.getStep());
    }
    return r;
  }

  private static <T> List<T> join(List<CompletableFuture<T>> calls) {
    List<T> out = new ArrayList<>();
    RuntimeException first = null;
    for (CompletableFuture<T> c : calls) {
      try {
        out.add(c.join());
      } catch (CompletionException e) {
        if (first == null) {
          first = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
    return out;
  }
}
