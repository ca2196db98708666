package dev.roadless.deploy.demo;

import dev.roadless.common.config.Settings;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The local demo: the optimizer service and R trainer replicas as separate processes on loopback
 * train the CNN on the bundled MNIST digits with AdamW-SF and warmup; then BatchNorm statistics are
 * rebuilt at x and the report shows what stale statistics from y cost. Writes a plot.
 */
public final class LocalDemo {
  static final List<Settings.Key> KEYS =
      List.of(
          Settings.Key.integer("steps", "1500", 10, 1_000_000, "training steps"),
          Settings.Key.text("model", "cnn", "cnn | cnn-small | mlp"),
          Settings.Key.text("variant", "adamw", "sgd | adamw | adamw-paper | radam | ..."),
          Settings.Key.integer("replicas", "2", 1, 16, "trainer replicas (processes)"),
          Settings.Key.integer(
              "optimizer-shards",
              "1",
              1,
              8,
              "optimizer processes the run is sharded over (1: one optimizer, not sharded)"),
          Settings.Key.text("lr", "0.01", "learning rate"),
          Settings.Key.integer("warmup-steps", "100", 0, 1_000_000, "linear warmup steps"),
          Settings.Key.integer("global-batch", "64", 2, 4096, "examples per step, all replicas"),
          Settings.Key.integer("eval-every", "250", 1, 1_000_000, "hold-out evaluation interval"),
          Settings.Key.text("out", "demo-out", "output directory (logs, snapshots, plot)"),
          Settings.Key.text("repo", ".", "repository root holding the built jars"),
          Settings.Key.integer(
              "startup-timeout-seconds",
              "600",
              1,
              86_400,
              "how long each service may take to come up (a first ND4J start unpacks ~450 MB)"));

  private static final String RUN = "demo";

  private LocalDemo() {}

  public static void main(String[] args) throws Exception {
    Settings s;
    try {
      s = Settings.parse(KEYS, args, Map.of());
    } catch (IllegalArgumentException e) {
      System.err.println("demo: " + e.getMessage());
      System.exit(2);
      return;
    }
    Path out = Path.of(s.text("out")).toAbsolutePath();
    System.out.printf(
        "Roadless demo: %s on MNIST, %s, %d replicas, %d optimizer shard(s), %d steps (logs in %s)%n",
        s.text("model"),
        s.text("variant"),
        s.integer("replicas"),
        s.integer("optimizer-shards"),
        s.integer("steps"),
        out.resolve("logs"));
    DemoCluster cluster = new DemoCluster(s, out);
    // Ctrl-C during start-up or training stops every child process through this hook.
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::close, "demo-stop"));
    try {
      cluster.start(RUN, System.out);
      new Demo(
              cluster.optimizer(),
              cluster.sharded(),
              cluster.trainers(),
              cluster.checkpoints(),
              s.integer("steps"),
              s.integer("eval-every"),
              out)
          .run();
    } catch (DemoException e) {
      // Say why before stopping the services (their drain takes a while); the hook stops them.
      System.err.println("demo: " + e.getMessage());
      System.exit(1);
    } finally {
      cluster.close();
    }
  }

  /** The demo's course: watch training, evaluate at x along the way, then the final report. */
  private record Demo(
      OptimizerClient optimizer,
      ShardedClient sharded,
      List<TrainerServiceGrpc.TrainerServiceBlockingStub> trainers,
      CheckpointServiceGrpc.CheckpointServiceBlockingStub checkpoints,
      int steps,
      int evalEvery,
      Path out) {

    void run() throws Exception {
      List<double[]> trainLoss = new CopyOnWriteArrayList<>();
      List<double[]> xLoss = new ArrayList<>();
      List<double[]> xAcc = new ArrayList<>();
      List<double[]> staleAcc = new ArrayList<>();
      Thread sampler = new Thread(() -> sampleTrainingLoss(trainLoss), "demo-sampler");
      sampler.setDaemon(true);
      sampler.start();
      long t0 = System.nanoTime();
      for (long k = Math.min(evalEvery, steps); ; k = Math.min(k + evalEvery, steps)) {
        if (sharded == null) {
          optimizer.parameters(RUN, Sequence.SEQUENCE_EVAL, k);
        } else {
          sharded.parameters(RUN, Sequence.SEQUENCE_EVAL, k);
        }
        EvaluateResponse recomputed =
            evaluate(
                statistics(0, BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE, 10),
                1000);
        EvaluateResponse stale = evaluateStale(1000);
        xLoss.add(new double[] {recomputed.getStep(), recomputed.getLoss()});
        xAcc.add(new double[] {recomputed.getStep(), 100 * recomputed.getAccuracy()});
        staleAcc.add(new double[] {stale.getStep(), 100 * stale.getAccuracy()});
        double lrK =
            (sharded == null ? optimizer.status(RUN) : sharded.status(RUN)).getGroups(0).getLrK();
        System.out.printf(
            "step %5d  train loss at y %.4f  hold-out at x: loss %.4f acc %.2f%% (stale BN %.2f%%)  lr_k %.4g  %.0f s%n",
            recomputed.getStep(),
            trainLoss.isEmpty() ? Double.NaN : trainLoss.get(trainLoss.size() - 1)[1],
            recomputed.getLoss(),
            100 * recomputed.getAccuracy(),
            100 * stale.getAccuracy(),
            lrK,
            (System.nanoTime() - t0) / 1e9);
        if (k >= steps) {
          break;
        }
      }
      sampler.interrupt();
      report(trainLoss, xLoss, xAcc, staleAcc);
    }

    private void report(
        List<double[]> trainLoss,
        List<double[]> xLoss,
        List<double[]> xAcc,
        List<double[]> staleAcc)
        throws Exception {
      CheckpointInfo ema = save(BatchNormMode.BATCH_NORM_MODE_EMA);
      CheckpointInfo precise = save(BatchNormMode.BATCH_NORM_MODE_PRECISE);
      Path dir = out.resolve("checkpoints").resolve(ema.getName());
      List<String> lines =
          List.of(
              String.format("Hold-out (2,000 real MNIST digits) at x, step %d:", ema.getStep()),
              String.format(
                  "  stale BN statistics from training at y  accuracy %6.2f%%  loss %.4f",
                  100 * ema.getStaleMetrics().getAccuracy(), ema.getStaleMetrics().getLoss()),
              String.format(
                  "  after EMA warmup (50 batches, m=0.1)     accuracy %6.2f%%  loss %.4f",
                  100 * ema.getRecomputedMetrics().getAccuracy(),
                  ema.getRecomputedMetrics().getLoss()),
              String.format(
                  "  precise BN (50 batches, pooled)          accuracy %6.2f%%  loss %.4f",
                  100 * precise.getRecomputedMetrics().getAccuracy(),
                  precise.getRecomputedMetrics().getLoss()),
              "Eval checkpoint (x, EMA-warmed BN, PyTorch state_dict names): " + dir,
              "Load it in PyTorch: the same architecture as an nn.Sequential with these module"
                  + " names, then model.load_state_dict(tensors, strict=True); see"
                  + " checkpoint-service/README.md");
      System.out.println();
      lines.forEach(System.out::println);
      Path plot = out.resolve("demo.html");
      Plot.write(
          plot,
          "Roadless demo: Schedule-Free training on MNIST",
          lines,
          List.of(
              new Plot.Chart(
                  "Loss",
                  "training step",
                  "cross-entropy (nats)",
                  List.of(
                      new Plot.Series("train loss at y", "#1f77b4", trainLoss),
                      new Plot.Series("hold-out loss at x", "#d62728", xLoss))),
              new Plot.Chart(
                  "Hold-out accuracy at x",
                  "training step",
                  "accuracy (%)",
                  List.of(
                      new Plot.Series("BN recomputed at x", "#2ca02c", xAcc),
                      new Plot.Series("stale BN from y", "#ff7f0e", staleAcc)))));
      System.out.println("Plot: " + plot);
    }

    private void sampleTrainingLoss(List<double[]> points) {
      long last = -1;
      while (!Thread.currentThread().isInterrupted()) {
        try {
          double sum = 0;
          long step = Long.MAX_VALUE;
          for (var t : trainers) {
            var st =
                t.withDeadlineAfter(5, TimeUnit.SECONDS)
                    .getStatus(GetStatusRequest.getDefaultInstance())
                    .getStatus();
            sum += st.getLoss();
            step = Math.min(step, st.getStep());
          }
          if (step != last && step > 0) {
            points.add(new double[] {step, sum / trainers.size()});
            last = step;
          }
          TimeUnit.MILLISECONDS.sleep(500);
        } catch (InterruptedException e) {
          return;
        } catch (RuntimeException e) {
          // a trainer is busy or gone; the next sample will tell
        }
      }
    }

    private ComputeBatchNormStatisticsResponse statistics(
        int replica, BatchNormStatisticsMode mode, int batches) {
      return trainers
          .get(replica)
          .withDeadlineAfter(5, TimeUnit.MINUTES)
          .computeBatchNormStatistics(
              ComputeBatchNormStatisticsRequest.newBuilder()
                  .setRunId(RUN)
                  .setSequence(Sequence.SEQUENCE_EVAL)
                  .setMode(mode)
                  .setBatches(batches)
                  .setDataSeed(7)
                  .build());
    }

    private CheckpointInfo save(BatchNormMode mode) {
      return checkpoints
          .withDeadlineAfter(10, TimeUnit.MINUTES)
          .saveCheckpoint(
              SaveCheckpointRequest.newBuilder()
                  .setRunId(RUN)
                  .setMinStep(steps)
                  .setBatchNorm(
                      BatchNormSettings.newBuilder().setMode(mode).setBatches(50).setDataSeed(7))
                  .build())
          .getCheckpoint();
    }

    private EvaluateResponse evaluate(ComputeBatchNormStatisticsResponse stats, long maxExamples) {
      return trainers
          .get(0)
          .withDeadlineAfter(5, TimeUnit.MINUTES)
          .evaluate(
              EvaluateRequest.newBuilder()
                  .setRunId(RUN)
                  .setSequence(Sequence.SEQUENCE_EVAL)
                  .addAllStatistics(stats.getLayersList())
                  .setMaxExamples(maxExamples)
                  .build());
    }

    private EvaluateResponse evaluateStale(long maxExamples) {
      return trainers
          .get(0)
          .withDeadlineAfter(5, TimeUnit.MINUTES)
          .evaluate(
              EvaluateRequest.newBuilder()
                  .setRunId(RUN)
                  .setSequence(Sequence.SEQUENCE_EVAL)
                  .setUseTrainingStatistics(true)
                  .setMaxExamples(maxExamples)
                  .build());
    }
  }
}
