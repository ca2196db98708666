package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.format.Tensor;
import dev.roadless.checkpoint.remote.RunReader;
import dev.roadless.checkpoint.remote.Upstream;
import dev.roadless.checkpoint.store.CheckpointNames;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.RunIds;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Saves eval checkpoints: x at one step k from the optimizer, BatchNorm statistics rebuilt at x_k
 * by the trainer replicas and merged exactly, hold-out metrics with the recomputed and with the
 * stale statistics, all written as {@code model.safetensors} plus manifest in one atomic commit,
 * then the retention policy.
 */
final class EvalCheckpointer {
  private static final Logger LOG = Logger.getLogger(EvalCheckpointer.class.getName());

  /** Tries before giving up on a run that keeps moving (training still running). */
  static final int MAX_ATTEMPTS = 3;

  static final int DEFAULT_BATCHES = 50;
  static final int MAX_BATCHES = 10_000;

  private final RunReader optimizer;
  private final String optimizerTarget;
  private final TrainerPool trainers;
  private final CheckpointStore store;
  private final Retention retention;
  private final Clock clock;

  EvalCheckpointer(
      RunReader optimizer,
      String optimizerTarget,
      TrainerPool trainers,
      CheckpointStore store,
      Retention retention,
      Clock clock) {
    this.optimizer = optimizer;
    this.optimizerTarget = optimizerTarget;
    this.trainers = trainers;
    this.store = store;
    this.retention = retention;
    this.clock = clock;
  }

  /** Everything read at one step k before anything is written. */
  private record Snapshot(
      Parameters x,
      RunStatus status,
      List<TrainerPool.Answer> answers,
      List<BatchNormMerge.Layer> merged,
      EvaluateResponse recomputed,
      EvaluateResponse stale) {}

  Checkpoints.Saved save(SaveCheckpointRequest request) {
    String runId = request.getRunId();
    RunIds.check(runId);
    if (!request.getName().isEmpty()) {
      CheckpointNames.check(request.getName(), "name");
    }
    if (request.hasMetric() && !Double.isFinite(request.getMetric())) {
      throw invalid("metric", "metric must be finite");
    }
    BatchNormSettings bn = normalize(request.getBatchNorm());
    boolean none = bn.getMode() == BatchNormMode.BATCH_NORM_MODE_NONE;
    if (!none && trainers.isEmpty()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_TRAINERS_NOT_CONFIGURED,
              "BatchNorm mode " + bn.getMode() + " needs trainer replicas; none are configured")
          .with("field", "trainer-targets")
          .build();
    }
    Snapshot snap = null;
    long minStep = request.getMinStep();
    TrainerPool.StepMoved moved = null;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && snap == null; attempt++) {
      try {
        snap = take(runId, minStep, bn);
      } catch (TrainerPool.StepMoved e) {
        moved = e;
        minStep = e.observed;
        LOG.info("run " + runId + " moved from step " + e.expected + " to " + e.observed);
      }
    }
    if (snap == null) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_CHECKPOINT_STEP_MOVED,
              "run '"
                  + runId
                  + "' kept moving while its checkpoint was taken ("
                  + MAX_ATTEMPTS
                  + " tries); stop training, then save again")
          .with("run_id", runId)
          .with("step", moved.expected)
          .with("current_step", moved.observed)
          .build();
    }
    Snapshot s = snap;
    long step = s.x().step();
    String name =
        request.getName().isEmpty()
            ? CheckpointNames.defaultName(runId, step, modeName(bn.getMode()))
            : request.getName();
    List<Tensor> tensors =
        EvalCheckpointFile.tensors(s.status().getSpec().getTensorsList(), s.x(), s.merged());
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put("format", "pt");
    metadata.put("roadless.run_id", runId);
    metadata.put("roadless.step", Long.toString(step));
    metadata.put("roadless.sequence", "eval (x)");
    metadata.put("roadless.batch_norm", modeName(bn.getMode()));
    CheckpointStore.Commit commit =
        store.commit(
            List.of(
                new CheckpointStore.StagedFile(
                    EvalCheckpointFile.FILE,
                    "safetensors",
                    path -> EvalCheckpointFile.write(path, tensors, metadata))),
            files -> manifest(name, request, bn, s, tensors, files));
    List<String> deleted = commit.created() ? retention.apply(store, commit.manifest()) : List.of();
    LOG.info(
        "eval checkpoint "
            + name
            + (commit.created() ? " saved" : " already existed")
            + ": run="
            + runId
            + " step="
            + step
            + " bn="
            + modeName(bn.getMode())
            + " recomputed="
            + describe(s.recomputed())
            + " stale="
            + describe(s.stale())
            + (deleted.isEmpty() ? "" : " retention_deleted=" + deleted));
    return new Checkpoints.Saved(commit, deleted);
  }

  private Snapshot take(String runId, long minStep, BatchNormSettings bn) {
    Parameters x =
        Upstream.optimizer(
            optimizerTarget, () -> optimizer.parameters(runId, Sequence.SEQUENCE_EVAL, minStep));
    long k = x.step();
    RunStatus status = Upstream.optimizer(optimizerTarget, () -> optimizer.status(runId));
    if (status.getStep() != k) {
      throw new TrainerPool.StepMoved(k, status.getStep());
    }
    boolean none = bn.getMode() == BatchNormMode.BATCH_NORM_MODE_NONE;
    List<TrainerPool.Answer> answers = none ? List.of() : trainers.statistics(runId, k, bn);
    List<BatchNormMerge.Layer> merged;
    try {
      merged =
          BatchNormMerge.merge(
              bn.getMode(), answers.stream().map(TrainerPool.Answer::statistics).toList());
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_TRAINERS_NOT_CONFIGURED,
              "the trainers' answers do not fit together: " + e.getMessage())
          .with("field", "trainer-targets")
          .build();
    }
    EvaluateResponse recomputed = null;
    EvaluateResponse stale = null;
    if (!trainers.isEmpty()) {
      if (!none) {
        recomputed = trainers.evaluate(runId, k, BatchNormMerge.toProto(merged));
      }
      stale = trainers.evaluate(runId, k, null);
    }
    return new Snapshot(x, status, answers, merged, recomputed, stale);
  }

  private Manifest manifest(
      String name,
      SaveCheckpointRequest request,
      BatchNormSettings bn,
      Snapshot s,
      List<Tensor> tensors,
      List<Manifest.FileEntry> files) {
    boolean none = bn.getMode() == BatchNormMode.BATCH_NORM_MODE_NONE;
    Manifest.BatchNorm batchNorm =
        new Manifest.BatchNorm(
            bn.getMode().name().substring("BATCH_NORM_MODE_".length()),
            none ? 0 : bn.getBatches(),
            bn.getBatchSize(),
            bn.getDataSeed(),
            s.answers().stream()
                .map(
                    a ->
                        new Manifest.ReplicaAnswer(
                            a.trainer().index(),
                            a.trainer().target(),
                            a.statistics().replica(),
                            a.statistics().step(),
                            a.statistics().batches()))
                .toList(),
            s.merged().stream()
                .map(
                    l ->
                        new Manifest.Layer(
                            l.layer(), l.statistics().count(), l.numBatchesTracked()))
                .toList());
    RunStatus optimizerState =
        s.status().toBuilder().clearRefusedPushes().clearPendingReplicas().build();
    return new Manifest(
        1,
        name,
        Manifest.EVAL,
        request.getRunId(),
        s.x().step(),
        clock.instant().toString(),
        s.status().getSpec().getVariant().name(),
        ProtoJson.tree(optimizerState),
        batchNorm,
        metrics(s.recomputed()),
        metrics(s.stale()),
        request.hasMetric() ? request.getMetric() : null,
        files,
        tensors.stream()
            .map(
                t ->
                    new Manifest.TensorEntry(
                        t.name(),
                        t.dtype().name(),
                        java.util.Arrays.stream(t.shape()).boxed().toList()))
            .toList());
  }

  /** Fills in the defaults and checks the ranges. */
  static BatchNormSettings normalize(BatchNormSettings s) {
    BatchNormSettings.Builder b = s.toBuilder();
    if (s.getMode() == BatchNormMode.BATCH_NORM_MODE_UNSPECIFIED) {
      b.setMode(BatchNormMode.BATCH_NORM_MODE_EMA);
    } else if (s.getMode() == BatchNormMode.UNRECOGNIZED) {
      throw invalid("batch_norm.mode", "unknown BatchNorm mode");
    }
    if (s.getBatches() == 0) {
      b.setBatches(DEFAULT_BATCHES);
    } else if (s.getBatches() < 1 || s.getBatches() > MAX_BATCHES) {
      throw invalid("batch_norm.batches", "batches must be in [1, " + MAX_BATCHES + "]");
    }
    if (s.getBatchSize() != 0 && s.getBatchSize() < 2) {
      throw invalid("batch_norm.batch_size", "batch_size must be 0 or at least 2");
    }
    return b.build();
  }

  static String modeName(BatchNormMode mode) {
    return mode.name().substring("BATCH_NORM_MODE_".length()).toLowerCase(Locale.ROOT);
  }

  private static Manifest.Metrics metrics(EvaluateResponse r) {
    return r == null ? null : new Manifest.Metrics(r.getLoss(), r.getAccuracy(), r.getExamples());
  }

  private static String describe(EvaluateResponse r) {
    return r == null
        ? "-"
        : String.format(Locale.ROOT, "loss %.4f accuracy %.4f", r.getLoss(), r.getAccuracy());
  }

  private static RoadlessException invalid(String field, String message) {
    return RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_CHECKPOINT_REQUEST, message)
        .with("field", field)
        .build();
  }
}
