package dev.roadless.optimizer.bench;

import dev.roadless.optimizer.OptimizerServerMain;
import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.shard.ShardPlan;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.optimizer.shard.ShardedSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The sharding benchmark: one AdamW-SF run of {@code params} float32 parameters (10 tensors) over S
 * = 1, 2, 3 optimizer servers, each its own process on loopback, and one replica (this process)
 * pushing whole gradients through a {@link ShardedSession} over TCP (shared memory off: what a
 * replica on another host gets). Prints per S the state each shard holds by the plan, each server
 * process's resident memory after the timed steps, and the push + step + pull round trip (median
 * and p90 over the timed steps).
 *
 * <p>Run: {@code ./mvnw -q -pl optimizer-service -am -Pshard-bench process-test-classes}, with
 * {@code -Dshard.args="params=10000000,40000000 shards=1,2,3 warmup=10 steps=20"}.
 */
public final class ShardBench {
  private ShardBench() {}

  public static void main(String[] args) throws Exception {
    long[] params = longs(arg(args, "params", "10000000,40000000"));
    long[] shards = longs(arg(args, "shards", "1,2,3"));
    int warmup = Integer.parseInt(arg(args, "warmup", "10"));
    int steps = Integer.parseInt(arg(args, "steps", "20"));
    System.out.printf(
        "shard bench: %d cores, warmup %d, timed %d steps, load %s%n",
        Runtime.getRuntime().availableProcessors(), warmup, steps, load());
    for (long n : params) {
      for (long s : shards) {
        run((int) n, (int) s, warmup, steps);
      }
    }
  }

  private static void run(int params, int shards, int warmup, int steps) throws Exception {
    RunSpec spec = spec(params);
    ShardPlan plan = ShardPlan.of(spec, shards);
    Path work = Files.createTempDirectory("shard-bench");
    List<Process> servers = new ArrayList<>();
    List<ManagedChannel> channels = new ArrayList<>();
    try {
      List<OptimizerClient> clients = new ArrayList<>();
      for (int s = 0; s < shards; s++) {
        int port = start(work, s, servers);
        ManagedChannel c = Channels.plaintext("127.0.0.1", port).build();
        channels.add(c);
        clients.add(new OptimizerClient(c, ClientOptions.defaults().withSharedMemory(false)));
      }
      ShardedClient client = new ShardedClient(clients, spec);
      client.createRun("bench");
      client.uploadInitialValues("bench", values(plan, 1, 1f));
      float[][] gradient = values(plan, 2, 1e-3f);
      long[] nanos = new long[steps];
      try (ShardedSession session = client.session("bench", 0, DataType.DATA_TYPE_FLOAT32, 0)) {
        Parameters y = session.current();
        for (int i = 0; i < warmup + steps; i++) {
          long t0 = System.nanoTime();
          y = session.next(y, gradient);
          if (i >= warmup) {
            nanos[i - warmup] = System.nanoTime() - t0;
          }
        }
      }
      Arrays.sort(nanos);
      StringBuilder memory = new StringBuilder();
      for (int s = 0; s < shards; s++) {
        long stateMb = plan.shard(s).elements() * 4 * 3 / 1_000_000; // z, x, exp_avg_sq
        memory
            .append(s == 0 ? "" : "; ")
            .append(
                String.format(
                    "shard %d: state %d MB, RSS %d MB", s, stateMb, rssMb(servers.get(s))));
      }
      System.out.printf(
          "params=%,d S=%d round trip median %.1f ms p90 %.1f ms | %s | load %s%n",
          params, shards, nanos[steps / 2] / 1e6, nanos[(int) (steps * 0.9)] / 1e6, memory, load());
    } finally {
      for (ManagedChannel c : channels) {
        c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      for (Process p : servers) {
        p.destroy();
        p.waitFor(30, TimeUnit.SECONDS);
      }
    }
  }

  private static int start(Path work, int shard, List<Process> servers) throws Exception {
    Path portFile = work.resolve("port-" + shard);
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx3g",
                "--add-modules=jdk.incubator.vector",
                "-cp",
                System.getProperty("java.class.path"),
                OptimizerServerMain.class.getName(),
                "--port=0",
                "--port-file=" + portFile,
                "--metrics-port=-1",
                "--shared-memory-dir=")
            .redirectErrorStream(true)
            .redirectOutput(work.resolve("server-" + shard + ".log").toFile())
            .start();
    servers.add(p);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!Files.exists(portFile) || Files.readString(portFile).isBlank()) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        throw new IllegalStateException("shard " + shard + " did not start; see " + work);
      }
      Thread.sleep(20); // polling a file another process writes
    }
    return Integer.parseInt(Files.readString(portFile).trim());
  }

  /** AdamW-SF, one SYNC replica, {@code params} parameters in 10 equal tensors. */
  private static RunSpec spec(int params) {
    RunSpec.Builder b =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(1)
            .setMode(StepMode.STEP_MODE_SYNC);
    ParameterGroup.Builder g = ParameterGroup.newBuilder().setName("all");
    for (int t = 0; t < 10; t++) {
      b.addTensors(
          TensorDescriptor.newBuilder().setName("layer" + t + ".weight").addShape(params / 10));
      g.addTensorNames("layer" + t + ".weight");
    }
    return b.addParameterGroups(g).build();
  }

  private static float[][] values(ShardPlan plan, long seed, float scale) {
    SplittableRandom r = new SplittableRandom(seed);
    float[][] out = new float[plan.spec().getTensorsCount()][];
    for (int t = 0; t < out.length; t++) {
      out[t] = new float[(int) plan.spec().getTensors(t).getShape(0)];
      for (int i = 0; i < out[t].length; i++) {
        out[t][i] = scale * (float) (r.nextDouble() - 0.5);
      }
    }
    return out;
  }

  private static long rssMb(Process p) throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(p.pid()), "status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("\\D", "")) / 1024;
      }
    }
    return -1;
  }

  private static String load() throws Exception {
    String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
    return f[0] + " " + f[1];
  }

  private static String arg(String[] args, String key, String dflt) {
    for (String a : args) {
      if (a.startsWith(key + "=")) {
        return a.substring(key.length() + 1);
      }
    }
    return dflt;
  }

  private static long[] longs(String csv) {
    return Arrays.stream(csv.split(",")).mapToLong(Long::parseLong).toArray();
  }
}
