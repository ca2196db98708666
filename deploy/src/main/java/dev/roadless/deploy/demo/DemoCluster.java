package dev.roadless.deploy.demo;

import dev.roadless.common.config.Settings;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Readiness;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The demo's services, started in dependency order and awaited explicitly: the optimizer is
 * SERVING, every trainer replica is SERVING (which it reports only once it has created the run),
 * the checkpoint service is SERVING (once its upstream is), and the run exists. Each wait is
 * bounded by {@code startup-timeout-seconds} and fails with a message that names the service and
 * its log.
 */
final class DemoCluster implements AutoCloseable {
  private final Settings settings;
  private final Path out;
  private final Duration timeout;
  private final ServiceProcesses services;
  private final List<ManagedChannel> channels = new CopyOnWriteArrayList<>(); // closed by a hook
  private final List<TrainerServiceGrpc.TrainerServiceBlockingStub> trainers = new ArrayList<>();
  private OptimizerClient optimizer;
  private final List<OptimizerClient> shardClients = new ArrayList<>();
  private ShardedClient sharded;
  private CheckpointServiceGrpc.CheckpointServiceBlockingStub checkpoints;
  private ChannelCredentials credentials;

  /** Nothing runs yet; {@link #close} stops whatever {@link #start} has started so far. */
  DemoCluster(Settings s, Path out) throws IOException {
    this.settings = s;
    this.out = out;
    this.timeout = Duration.ofSeconds(s.integer("startup-timeout-seconds"));
    this.services =
        new ServiceProcesses(
            Path.of(s.text("repo")).toAbsolutePath(), out.resolve("logs"), timeout);
  }

  /** Starts every service and returns once run {@code run} can be used. */
  void start(String run, PrintStream log) throws IOException, InterruptedException {
    Settings s = settings;
    long t0 = System.nanoTime();
    DemoSecurity security;
    try {
      security = DemoSecurity.create(out, run, s.integer("replicas"));
      credentials = security.launcherCredentials();
    } catch (java.security.GeneralSecurityException e) {
      throw new DemoException("cannot make the demo's certificates: " + e.getMessage());
    }
    String wait = "--startup-timeout-seconds=" + timeout.toSeconds();
    // S optimizer processes: one (the default) or the shards of a sharded run, each its own
    // snapshot directory; the trainers and the checkpoint service are given every shard.
    int shards = s.integer("optimizer-shards");
    List<String> shardTargets = new ArrayList<>();
    for (int i = 0; i < shards; i++) {
      String name = shards == 1 ? "optimizer" : "optimizer-" + i;
      int port =
          services.start(
              name,
              "optimizer-service",
              // The image's memory settings (docs/BENCHMARKS.md, issue 15) on a 1 GB heap.
              List.of(
                  "-Xmx1g", "-XX:+UseSerialGC", "-Xmn128m", "--add-modules=jdk.incubator.vector"),
              concat(
                  security.serverFlags(),
                  "--threads=1",
                  "--snapshot-dir=" + out.resolve(shards == 1 ? "snapshots" : "snapshots-" + i)),
              Map.of());
      ManagedChannel c = channel(port);
      services.awaitServing(name, c, OptimizerServiceGrpc.SERVICE_NAME);
      shardClients.add(new OptimizerClient(c, ClientOptions.defaults()));
      shardTargets.add("127.0.0.1:" + port);
    }
    optimizer = shardClients.get(0);
    List<String> sharding =
        shards == 1
            ? List.of()
            : List.of("--optimizer-shard-targets=" + String.join(",", shardTargets));

    int replicas = s.integer("replicas");
    List<Integer> trainerPorts = new ArrayList<>();
    List<String> trainerTargets = new ArrayList<>();
    for (int r = 0; r < replicas; r++) {
      // Each replica waits for the optimizer itself, then loads the model and creates the run.
      int port =
          services.start(
              "trainer-" + r,
              "trainer-service",
              List.of("-Xmx1g"),
              concat(
                  security.serverFlags(),
                  security.trainerClientFlags(r),
                  "--optimizer-target=" + shardTargets.get(0),
                  sharding,
                  "--run-id=" + run,
                  "--replica=" + r,
                  "--replicas=" + replicas,
                  "--model=" + s.text("model"),
                  "--steps=" + s.integer("steps"),
                  "--global-batch=" + s.integer("global-batch"),
                  "--variant=" + s.text("variant"),
                  "--lr=" + s.text("lr"),
                  "--warmup-steps=" + s.integer("warmup-steps"),
                  "--data-seed=1",
                  "--progress-every=100",
                  wait),
              Map.of("OMP_NUM_THREADS", "1"));
      trainerPorts.add(port);
      trainerTargets.add("127.0.0.1:" + port);
    }
    int checkpointPort =
        services.start(
            "checkpoint",
            "checkpoint-service",
            List.of("-Xmx512m"),
            concat(
                security.serverFlags(),
                security.checkpointClientFlags(),
                "--checkpoint-dir=" + out.resolve("checkpoints"),
                "--optimizer-target=" + shardTargets.get(0),
                sharding,
                "--trainer-targets=" + String.join(",", trainerTargets),
                wait),
            Map.of());
    log.printf("Waiting for the trainers to load the model and create run '%s' ...%n", run);
    for (int r = 0; r < replicas; r++) {
      ManagedChannel c = channel(trainerPorts.get(r));
      services.awaitServing("trainer-" + r, c, TrainerServiceGrpc.SERVICE_NAME);
      trainers.add(TrainerServiceGrpc.newBlockingStub(c));
    }
    ManagedChannel toCheckpoint = channel(checkpointPort);
    services.awaitServing("checkpoint", toCheckpoint, CheckpointServiceGrpc.SERVICE_NAME);
    checkpoints = CheckpointServiceGrpc.newBlockingStub(toCheckpoint);
    // A SERVING trainer has created the run; this only confirms it on the optimizer.
    try {
      for (OptimizerClient shard : shardClients) {
        Readiness.awaitRun(shard, run, timeout);
      }
      if (shards > 1) {
        sharded = ShardedClient.recover(shardClients, run);
      }
    } catch (StatusRuntimeException e) {
      throw new DemoException(e.getStatus().getDescription() + "; see the trainers' logs");
    }
    log.printf("All services ready in %.1f s%n", (System.nanoTime() - t0) / 1e9);
  }

  /** The optimizer (with several shards: shard 0). */
  OptimizerClient optimizer() {
    return optimizer;
  }

  /** The run over every shard, or null when the demo runs one optimizer. */
  ShardedClient sharded() {
    return sharded;
  }

  List<TrainerServiceGrpc.TrainerServiceBlockingStub> trainers() {
    return List.copyOf(trainers);
  }

  CheckpointServiceGrpc.CheckpointServiceBlockingStub checkpoints() {
    return checkpoints;
  }

  private ManagedChannel channel(int port) {
    ManagedChannel c = Grpc.newChannelBuilderForAddress("127.0.0.1", port, credentials).build();
    channels.add(c);
    return c;
  }

  private static List<String> concat(List<String> first, Object... rest) {
    List<String> all = new ArrayList<>(first);
    for (Object o : rest) {
      if (o instanceof List<?> l) {
        l.forEach(x -> all.add((String) x));
      } else {
        all.add((String) o);
      }
    }
    return all;
  }

  @Override
  public void close() {
    channels.forEach(ManagedChannel::shutdownNow);
    services.close();
  }
}
