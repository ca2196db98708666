package dev.roadless.checkpoint.service;

import static dev.roadless.checkpoint.testing.TrainedCluster.RUN;
import static dev.roadless.checkpoint.testing.TrainedCluster.STEPS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.format.Safetensors;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.PyTorchLoader;
import dev.roadless.checkpoint.testing.TrainedCluster;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc.CheckpointServiceBlockingStub;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointResponse;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.data.Mnist;
import dev.roadless.trainer.data.Sharding;
import dev.roadless.trainer.eval.BatchNormRecalibration;
import dev.roadless.trainer.eval.Evaluation;
import dev.roadless.trainer.eval.RecomputedStatistics;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Eval checkpoints end to end: a trained MLP (one optimizer and two trainer replicas on loopback,
 * shared by every test here), a checkpoint server asking both replicas, real files.
 */
class CheckpointEndToEndTest {
  private static TrainedCluster cluster;
  private static CheckpointServiceBlockingStub checkpoints;
  private static Path dir;

  @TempDir static Path tmp;

  @BeforeAll
  static void trainAndServe() throws Exception {
    cluster = new TrainedCluster();
    dir = tmp.resolve("checkpoints");
    checkpoints =
        cluster.checkpointServer(
            dir,
            cluster.trainerTargets,
            new Retention(0, Retention.BestMetric.NONE),
            TrainedCluster.fastFailing());
  }

  @AfterAll
  static void stop() throws Exception {
    cluster.close();
  }

  @Test
  void saveCheckpoint_eachBatchNormMode_writesXAtTheStepWithStatisticsAndMetrics()
      throws Exception {
    Parameters x = cluster.optimizerClient.parameters(RUN, Sequence.SEQUENCE_EVAL, 0);
    System.out.printf("%-8s %-28s %-28s%n", "mode", "x + recomputed BN", "x + stale BN (y's)");
    for (BatchNormMode mode :
        List.of(
            BatchNormMode.BATCH_NORM_MODE_EMA,
            BatchNormMode.BATCH_NORM_MODE_PRECISE,
            BatchNormMode.BATCH_NORM_MODE_NONE)) {
      SaveCheckpointResponse r = checkpoints.saveCheckpoint(save(mode, ""));
      CheckpointInfo info = r.getCheckpoint();
      String suffix = mode.name().substring("BATCH_NORM_MODE_".length()).toLowerCase(Locale.ROOT);
      assertEquals(RUN + "-step" + STEPS + "-" + suffix, info.getName());
      assertTrue(r.getCreated());
      assertEquals(STEPS, info.getStep());
      assertTrue(info.hasStaleMetrics());
      assertEquals(mode != BatchNormMode.BATCH_NORM_MODE_NONE, info.hasRecomputedMetrics());
      System.out.printf(
          "%-8s %-28s %-28s%n",
          suffix,
          info.hasRecomputedMetrics() ? describe(info.getRecomputedMetrics()) : "-",
          describe(info.getStaleMetrics()));

      Path file = dir.resolve(info.getName()).resolve("model.safetensors");
      Safetensors.Contents contents = Safetensors.read(file);
      for (String name : x.names()) {
        assertArrayEquals(x.get(name), contents.tensors().get(name).floats(), name);
      }
      assertEquals(Long.toString(STEPS), contents.metadata().get("roadless.step"));
      if (mode == BatchNormMode.BATCH_NORM_MODE_NONE) {
        assertEquals(x.names().size(), contents.tensors().size());
        continue;
      }
      assertEquals(x.names().size() + 3, contents.tensors().size());
      long tracked = contents.tensors().get("bn1.num_batches_tracked").longs()[0];
      // EMA continues from training (one batch per step) for 50 batches; PRECISE counts its own.
      assertEquals(mode == BatchNormMode.BATCH_NORM_MODE_EMA ? STEPS + 50 : 50, tracked);
      assertTrue(
          info.getRecomputedMetrics().getAccuracy() > 0.9, describe(info.getRecomputedMetrics()));
      assertEquals(2000, info.getRecomputedMetrics().getExamples());
    }
  }

  @Test
  void saveCheckpoint_precise_pyTorchLoadsItStrictlyAndReproducesJavaLogits() throws Exception {
    CheckpointInfo info =
        checkpoints
            .saveCheckpoint(save(BatchNormMode.BATCH_NORM_MODE_PRECISE, "pytorch-precise"))
            .getCheckpoint();
    Path file = dir.resolve(info.getName()).resolve("model.safetensors");
    Safetensors.Contents contents = Safetensors.read(file);

    // The trainer's model with exactly what the file holds.
    Model model = Model.create(ModelSpec.parse(TrainedCluster.MLP, 784), 0);
    Map<String, float[]> weights = new LinkedHashMap<>();
    for (var t : model.trainableTensors()) {
      weights.put(t.name(), contents.tensors().get(t.name()).floats());
    }
    Map<String, BatchNormBuffers> buffers =
        Map.of(
            "bn1",
            BatchNormBuffers.of(
                contents.tensors().get("bn1.running_mean").floats(),
                contents.tensors().get("bn1.running_var").floats(),
                contents.tensors().get("bn1.num_batches_tracked").longs()[0],
                0.1));
    // The file holds what the trainers evaluated: the same hold-out result, computed here.
    Evaluation.Result local = Evaluation.evaluate(model, weights, buffers, Mnist.holdout(), 500);
    assertEquals(info.getRecomputedMetrics().getAccuracy(), local.accuracy());
    assertEquals(info.getRecomputedMetrics().getLoss(), local.loss(), 1e-9);

    model.setParameters(weights);
    model.setBatchNormBuffers(buffers);
    Batch holdout = Mnist.holdout().range(0, 256);
    float[] java = model.evalLogits(holdout.inputs(), holdout.size());
    float[] torch =
        PyTorchLoader.logits(
                TrainedCluster.MLP,
                new int[] {784},
                holdout.inputs(),
                holdout.size(),
                List.of(file),
                tmp)
            .get(0);
    double diff = PyTorchLoader.maxAbsDiff(java, torch);
    double scale = Math.max(1, PyTorchLoader.maxAbs(java));
    System.out.printf(
        "pytorch vs java logits (256 hold-out digits): max abs diff %.3g, max |logit| %.3g%n",
        diff, scale);
    // float32 sums over 784 and 256 inputs in different orders (oneDNN vs PyTorch's MKL).
    assertTrue(diff <= 1e-5 * scale, "max abs diff " + diff);
  }

  @Test
  void computeBatchNormStatistics_twoReplicasMerged_equalOneProcessOverTheSameBatches() {
    int batches = 20;
    List<ReplicaStatistics> parts = new ArrayList<>();
    for (var stub : cluster.trainerStubs) {
      parts.add(
          ReplicaStatistics.of(
              stub.computeBatchNormStatistics(
                  ComputeBatchNormStatisticsRequest.newBuilder()
                      .setRunId(RUN)
                      .setSequence(Sequence.SEQUENCE_EVAL)
                      .setMode(BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE)
                      .setBatches(batches)
                      .setDataSeed(7)
                      .build())));
    }
    BatchNormMerge.Layer merged =
        BatchNormMerge.merge(BatchNormMode.BATCH_NORM_MODE_PRECISE, parts).get(0);

    // One process forwarding both replicas' batches (each replica's share is 32 examples).
    Parameters x = cluster.optimizerClient.parameters(RUN, Sequence.SEQUENCE_EVAL, 0);
    Map<String, float[]> weights = new LinkedHashMap<>();
    x.names().forEach(n -> weights.put(n, x.get(n)));
    IdxDataset train = Mnist.train();
    Sharding sharding = new Sharding(7, train.size(), 64, 2);
    List<Batch> all = new ArrayList<>();
    for (int r = 0; r < 2; r++) {
      for (int i = 0; i < batches; i++) {
        all.add(train.batch(sharding.slice(i, r)));
      }
    }
    RecomputedStatistics one =
        BatchNormRecalibration.recompute(
            Model.create(ModelSpec.parse(TrainedCluster.MLP, 784), 0),
            weights,
            all,
            BatchNormRecalibration.Options.precise());
    BatchNormStatistics single = one.statistics().get("bn1");
    BatchNormStatistics two = merged.statistics();
    assertEquals(single.count(), two.count());
    assertEquals(2L * batches * 32, two.count());
    double meanErr = maxRelative(two.mean(), single.mean());
    double m2Err = maxRelative(two.m2(), single.m2());
    System.out.printf(
        "merge of 2 replicas vs 1 process over %d values: mean rel err %.2g, M2 rel err %.2g%n",
        two.count(), meanErr, m2Err);
    assertTrue(meanErr < 1e-12 && m2Err < 1e-12, meanErr + " " + m2Err);
    // And the float32 buffers written to a checkpoint are the same.
    assertArrayEquals(one.buffers().get("bn1").runningMean(), merged.buffers().runningMean());
    assertArrayEquals(one.buffers().get("bn1").runningVar(), merged.buffers().runningVar());
  }

  @Test
  void saveCheckpoint_unreachableTrainer_unavailableAndNothingWritten() throws Exception {
    Path other = tmp.resolve("unreachable");
    List<String> targets = List.of(cluster.trainerTargets.get(0), "127.0.0.1:1");
    CheckpointServiceBlockingStub stub =
        cluster.checkpointServer(
            other,
            targets,
            new Retention(0, Retention.BestMetric.NONE),
            TrainedCluster.fastFailing());
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.saveCheckpoint(save(BatchNormMode.BATCH_NORM_MODE_PRECISE, "never")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    assertEquals("TRAINER_UNAVAILABLE", OptimizerClient.reason(e));
    System.out.println("unreachable trainer: " + e.getStatus().getDescription());
    try (Stream<Path> left = Files.list(other)) {
      assertEquals(
          List.of(".staging", ".trash"),
          left.map(p -> p.getFileName().toString()).sorted().toList());
    }
    try (Stream<Path> staged = Files.list(other.resolve(".staging"))) {
      assertEquals(0, staged.count());
    }
  }

  @Test
  void saveCheckpoint_keepLastOneAndBestAccuracy_deletesTheRest() throws Exception {
    Path other = tmp.resolve("retention");
    CheckpointServiceBlockingStub stub =
        cluster.checkpointServer(
            other,
            cluster.trainerTargets,
            new Retention(1, Retention.BestMetric.ACCURACY),
            TrainedCluster.fastFailing());
    SaveCheckpointResponse a = stub.saveCheckpoint(save(BatchNormMode.BATCH_NORM_MODE_EMA, "r-a"));
    SaveCheckpointResponse b =
        stub.saveCheckpoint(
            save(BatchNormMode.BATCH_NORM_MODE_PRECISE, "r-b").toBuilder()
                .setBatchNorm(
                    BatchNormSettings.newBuilder()
                        .setMode(BatchNormMode.BATCH_NORM_MODE_PRECISE)
                        .setBatches(4))
                .build());
    SaveCheckpointResponse c = stub.saveCheckpoint(save(BatchNormMode.BATCH_NORM_MODE_NONE, "r-c"));
    double accA = a.getCheckpoint().getRecomputedMetrics().getAccuracy();
    double accB = b.getCheckpoint().getRecomputedMetrics().getAccuracy();
    // Ties go to the newer checkpoint, r-b.
    String best = accB >= accA ? "r-b" : "r-a";
    String worse = best.equals("r-a") ? "r-b" : "r-a";
    List<String> deleted = new ArrayList<>(b.getRetentionDeletedList());
    deleted.addAll(c.getRetentionDeletedList());
    System.out.printf(
        "retention: r-a %.4f, r-b %.4f; kept r-c (newest) and %s, deleted %s%n",
        accA, accB, best, deleted);
    assertEquals(List.of(worse), deleted);
    try (Stream<Path> left = Files.list(other)) {
      assertEquals(
          List.of(".staging", ".trash", best, "r-c").stream().sorted().toList(),
          left.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void saveCheckpoint_precise_movesXOncePerConsumer() throws Exception {
    CheckpointServiceBlockingStub own =
        cluster.checkpointServer(
            tmp.resolve("transfers"),
            cluster.trainerTargets,
            new Retention(0, Retention.BestMetric.NONE),
            TrainedCluster.fastFailing());
    int before = cluster.parameterReads.get();
    own.saveCheckpoint(save(BatchNormMode.BATCH_NORM_MODE_PRECISE, "transfers"));
    int reads = cluster.parameterReads.get() - before;
    int replicas = cluster.trainerTargets.size();
    System.out.printf(
        "x transfers for one PRECISE eval checkpoint with %d replicas: %d%n", replicas, reads);
    // The checkpoint service once, each replica at most once for its statistics; replica 0's two
    // evaluations reuse its x (R+3 before). A replica that read x_k for an earlier save in this
    // class reuses it too, hence at most.
    assertTrue(reads >= 1 && reads <= 1 + replicas, "GetParameters calls: " + reads);
  }

  static SaveCheckpointRequest save(BatchNormMode mode, String name) {
    return SaveCheckpointRequest.newBuilder()
        .setRunId(RUN)
        .setBatchNorm(BatchNormSettings.newBuilder().setMode(mode))
        .setMinStep(STEPS)
        .setName(name)
        .build();
  }

  private static String describe(dev.roadless.proto.checkpoint.v1.HoldoutMetrics m) {
    return String.format(Locale.ROOT, "acc %.4f loss %.4f", m.getAccuracy(), m.getLoss());
  }

  private static double maxRelative(double[] a, double[] b) {
    double scale = 0;
    double err = 0;
    for (int i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(b[i]));
      err = Math.max(err, Math.abs(a[i] - b[i]));
    }
    return err / Math.max(scale, 1e-300);
  }
}
