package dev.roadless.checkpoint.server;

import com.google.protobuf.Timestamp;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointFile;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointKind;
import dev.roadless.proto.checkpoint.v1.HoldoutMetrics;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import java.nio.charset.StandardCharsets;
import java.time.Instant;

/** Manifests as CheckpointInfo messages. */
final class InfoMapping {
  private InfoMapping() {}

  /**
   * @param verified whether this call checked every file's SHA-256
   * @param withJson whether to include the manifest text
   */
  static CheckpointInfo info(Manifest m, boolean verified, boolean withJson) {
    Instant created = Instant.parse(m.createTime());
    CheckpointInfo.Builder b =
        CheckpointInfo.newBuilder()
            .setName(m.name())
            .setKind(
                m.kind().equals(Manifest.EVAL)
                    ? CheckpointKind.CHECKPOINT_KIND_EVAL
                    : CheckpointKind.CHECKPOINT_KIND_STATE)
            .setRunId(m.runId())
            .setStep(m.step())
            .setCreateTime(
                Timestamp.newBuilder()
                    .setSeconds(created.getEpochSecond())
                    .setNanos(created.getNano()))
            .setVariant(variant(m.variant()))
            .setVerified(verified);
    if (m.batchNorm() != null) {
      b.setBatchNorm(
          BatchNormSettings.newBuilder()
              .setMode(BatchNormMode.valueOf("BATCH_NORM_MODE_" + m.batchNorm().mode()))
              .setBatches(m.batchNorm().batches())
              .setBatchSize(m.batchNorm().batchSize())
              .setDataSeed(m.batchNorm().dataSeed()));
    }
    if (m.recomputedMetrics() != null) {
      b.setRecomputedMetrics(metrics(m.recomputedMetrics()));
    }
    if (m.staleMetrics() != null) {
      b.setStaleMetrics(metrics(m.staleMetrics()));
    }
    if (m.metric() != null) {
      b.setMetric(m.metric());
    }
    for (Manifest.FileEntry f : m.files()) {
      b.addFiles(file(f));
    }
    if (withJson) {
      b.setManifestJson(new String(m.toJson(), StandardCharsets.UTF_8));
    }
    return b.build();
  }

  static CheckpointFile file(Manifest.FileEntry f) {
    return CheckpointFile.newBuilder()
        .setName(f.name())
        .setSizeBytes(f.sizeBytes())
        .setSha256(f.sha256())
        .setFormat(f.format())
        .build();
  }

  private static HoldoutMetrics metrics(Manifest.Metrics m) {
    return HoldoutMetrics.newBuilder()
        .setLoss(m.loss())
        .setAccuracy(m.accuracy())
        .setExamples(m.examples())
        .build();
  }

  private static OptimizerVariant variant(String name) {
    try {
      return OptimizerVariant.valueOf(name);
    } catch (IllegalArgumentException | NullPointerException e) {
      return OptimizerVariant.OPTIMIZER_VARIANT_UNSPECIFIED;
    }
  }
}
