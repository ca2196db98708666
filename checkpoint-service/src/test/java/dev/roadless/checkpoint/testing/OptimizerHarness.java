package dev.roadless.checkpoint.testing;

import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Executors;

/**
 * Optimizer servers on loopback, small AdamW-SF runs driven with seeded gradients, and checkpoint
 * servers without trainers on top of them.
 */
public final class OptimizerHarness implements AutoCloseable {
  public static final List<String> NAMES = List.of("fc.weight", "fc.bias");
  static final int[][] SHAPES = {{16, 8}, {16}};

  private final List<OptimizerServer> optimizers = new ArrayList<>();
  private final List<CheckpointServer> checkpointServers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();

  /** Starts another optimizer server; returns its index. */
  public int startOptimizer() throws Exception {
    return startOptimizer(new io.grpc.ServerInterceptor[0]);
  }

  /** Starts another optimizer server whose calls also pass {@code interceptors}. */
  public int startOptimizer(io.grpc.ServerInterceptor... interceptors) throws Exception {
    io.grpc.ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create());
    for (io.grpc.ServerInterceptor i : interceptors) {
      builder.intercept(i);
    }
    optimizers.add(OptimizerServer.builder(builder).build().start());
    return optimizers.size() - 1;
  }

  /** The loopback port of optimizer {@code optimizer}. */
  public int port(int optimizer) {
    return optimizers.get(optimizer).port();
  }

  /** Seeded values in the run's shapes: initial values with seed 1, gradients otherwise. */
  public static float[][] seeded(long seed) {
    return values(seed);
  }

  public OptimizerClient client(int optimizer) {
    return new OptimizerClient(
        channel(optimizers.get(optimizer).port()), TrainedCluster.fastFailing());
  }

  /** A checkpoint server without trainers over optimizer {@code optimizer}. */
  public CheckpointServiceGrpc.CheckpointServiceBlockingStub checkpointServer(
      int optimizer, Path dir, Retention retention) throws Exception {
    return CheckpointServiceGrpc.newBlockingStub(
        checkpointChannel(optimizer, dir, retention, 64, 4));
  }

  /**
   * A channel to a checkpoint server without trainers over optimizer {@code optimizer}, with the
   * given concurrency limits, whose calls also pass {@code interceptors}.
   */
  public ManagedChannel checkpointChannel(
      int optimizer,
      Path dir,
      Retention retention,
      int maxDownloads,
      int maxTransfers,
      io.grpc.ServerInterceptor... interceptors)
      throws Exception {
    ManagedChannel c = channel(optimizers.get(optimizer).port());
    Checkpoints checkpoints =
        new Checkpoints(
            new OptimizerClient(c, TrainedCluster.fastFailing()),
            "optimizer-" + optimizer,
            new OptimizerStateClient(c, TrainedCluster.fastFailing()),
            List.of(),
            Executors.newSingleThreadExecutor(),
            new CheckpointStore(dir),
            retention,
            Clock.systemUTC());
    io.grpc.ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create());
    for (io.grpc.ServerInterceptor i : interceptors) {
      builder.intercept(i);
    }
    CheckpointServer server =
        new CheckpointServer(
                builder, checkpoints, ServiceMetrics.newIsolated(), maxDownloads, maxTransfers)
            .start();
    checkpointServers.add(server);
    return channel(server.port());
  }

  /** An AdamW-SF run over a [16,8] weight and a [16] bias, 2 SYNC replicas. */
  public static RunSpec spec() {
    RunSpec.Builder spec =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(2)
            .setMode(StepMode.STEP_MODE_SYNC);
    ParameterGroup.Builder g =
        ParameterGroup.newBuilder()
            .setName("default")
            .setHyperparameters(
                Hyperparameters.newBuilder().setLr(0.01).setWarmupSteps(3).setWeightDecay(0.01));
    for (int t = 0; t < NAMES.size(); t++) {
      TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(NAMES.get(t));
      for (int dim : SHAPES[t]) {
        d.addShape(dim);
      }
      spec.addTensors(d);
      g.addTensorNames(NAMES.get(t));
    }
    return spec.addParameterGroups(g).build();
  }

  /** Creates and initializes a run on optimizer {@code optimizer}. */
  public void newRun(OptimizerClient client, String runId) {
    client.createRun(runId, spec());
    client.uploadInitialValues(runId, NAMES, values(1));
  }

  /** Pushes both replicas' seeded gradients of steps [from, to). */
  public static void train(OptimizerClient client, String runId, long from, long to) {
    for (long k = from; k < to; k++) {
      for (int r = 0; r < 2; r++) {
        client.push(runId, r, k, NAMES, values(1000 * k + r + 2), DataType.DATA_TYPE_FLOAT32);
      }
    }
  }

  static float[][] values(long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    float[][] out = new float[SHAPES.length][];
    for (int t = 0; t < SHAPES.length; t++) {
      int n = 1;
      for (int d : SHAPES[t]) {
        n *= d;
      }
      out[t] = new float[n];
      for (int i = 0; i < n; i++) {
        out[t][i] = (float) (rnd.nextDouble() * 2 - 1);
      }
    }
    return out;
  }

  /** y, x, z bit patterns and the schedule of a run (without its id and refusal counters). */
  public static String fingerprint(OptimizerClient client, String runId) {
    StringBuilder sb = new StringBuilder();
    for (Sequence s :
        List.of(Sequence.SEQUENCE_TRAIN, Sequence.SEQUENCE_EVAL, Sequence.SEQUENCE_BASE)) {
      Parameters p = client.parameters(runId, s, 0);
      sb.append(s).append('@').append(p.step());
      for (float[] v : p.values()) {
        for (float f : v) {
          sb.append(',').append(Integer.toHexString(Float.floatToRawIntBits(f)));
        }
      }
    }
    sb.append(client.status(runId).toBuilder().clearRefusedPushes().clearRunId().build());
    return sb.toString();
  }

  private ManagedChannel channel(int port) {
    ManagedChannel c =
        Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
            .build();
    channels.add(c);
    return c;
  }

  @Override
  public void close() throws Exception {
    for (CheckpointServer s : checkpointServers) {
      s.shutdown(1);
    }
    for (ManagedChannel c : channels) {
      c.shutdownNow();
    }
    for (OptimizerServer o : optimizers) {
      o.shutdown(1);
    }
  }
}
