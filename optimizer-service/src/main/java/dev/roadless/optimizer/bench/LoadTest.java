package dev.roadless.optimizer.bench;

import dev.roadless.common.config.Settings;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Many synthetic trainer replicas against one optimizer server: a bounded number of SYNC steps,
 * then per-step latency percentiles and steps per second. Used by the Kubernetes load-test Job;
 * flags or {@code ROADLESS_*} environment variables configure it like the servers.
 */
public final class LoadTest {
  static final List<Settings.Key> KEYS =
      List.of(
          Settings.Key.text("optimizer-target", "127.0.0.1:50051", "optimizer gRPC target"),
          Settings.Key.integer("loadtest-replicas", "8", 1, 1024, "synthetic replicas"),
          Settings.Key.integer("loadtest-params", "1000000", 1, 500_000_000, "float32 parameters"),
          Settings.Key.integer("loadtest-steps", "50", 1, 100_000, "SYNC steps to run"),
          Settings.Key.text("loadtest-run", "loadtest", "run id; created if missing"),
          Settings.Key.text("loadtest-dtype", "float32", "gradient wire type: float32|bfloat16"));

  private LoadTest() {}

  public static void main(String[] args) throws Exception {
    Settings s = Settings.parse(KEYS, args, System.getenv());
    int replicas = s.integer("loadtest-replicas");
    int params = s.integer("loadtest-params");
    int steps = s.integer("loadtest-steps");
    String run = s.text("loadtest-run");
    DataType dtype =
        "bfloat16".equals(s.text("loadtest-dtype"))
            ? DataType.DATA_TYPE_BFLOAT16
            : DataType.DATA_TYPE_FLOAT32;
    ManagedChannel channel =
        Grpc.newChannelBuilder(s.text("optimizer-target"), InsecureChannelCredentials.create())
            .maxInboundMessageSize(8 << 20)
            .build();
    ExecutorService pool = Executors.newFixedThreadPool(replicas);
    try {
      OptimizerClient client = new OptimizerClient(channel, ClientOptions.defaults());
      RunSpec spec =
          RunSpec.newBuilder()
              .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
              .setReplicas(replicas)
              .setMode(StepMode.STEP_MODE_SYNC)
              .addTensors(TensorDescriptor.newBuilder().setName("weight").addShape(params))
              .addParameterGroups(
                  ParameterGroup.newBuilder().setName("all").addTensorNames("weight"))
              .build();
      client.createRun(run, spec);
      List<String> names = List.of("weight");
      client.uploadInitialValues(run, names, new float[][] {new float[params]});
      long t0 = System.nanoTime();
      List<Future<long[]>> results = new ArrayList<>();
      for (int r = 0; r < replicas; r++) {
        int replica = r;
        results.add(
            pool.submit(
                () -> {
                  float[][] g = {new float[params]};
                  SplittableRandom random = new SplittableRandom(replica);
                  for (int i = 0; i < params; i++) {
                    g[0][i] = (float) random.nextGaussian() * 1e-3f;
                  }
                  ReplicaSession session = new ReplicaSession(client, run, replica, dtype);
                  Parameters y = session.current();
                  long[] nanos = new long[steps];
                  for (int k = 0; k < steps && y.step() < steps; k++) {
                    long t = System.nanoTime();
                    y = session.next(y, g);
                    nanos[k] = System.nanoTime() - t;
                  }
                  return nanos;
                }));
      }
      long[] all = new long[replicas * steps];
      int n = 0;
      for (Future<long[]> f : results) {
        for (long v : f.get(1, TimeUnit.HOURS)) {
          all[n++] = v;
        }
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      Arrays.sort(all);
      System.out.printf(
          "loadtest: %d replicas, %,d params, %d steps in %.1f s: %.2f steps/s;"
              + " step latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms%n",
          replicas,
          params,
          steps,
          seconds,
          steps / seconds,
          all[all.length / 2] / 1e6,
          all[all.length * 9 / 10] / 1e6,
          all[Math.min(all.length - 1, all.length * 99 / 100)] / 1e6);
    } finally {
      pool.shutdownNow();
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
