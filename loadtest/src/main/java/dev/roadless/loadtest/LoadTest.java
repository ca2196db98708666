package dev.roadless.loadtest;

import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Runs one {@link Scenario}: creates its runs, starts the replicas (ramped), the readers and a
 * once-a-second ticker that closes the histograms' intervals and prints the progress line, waits
 * for the replicas to finish, and reads the server's /metrics before and after.
 */
final class LoadTest {
  /**
   * Replicas that share one HTTP/2 connection (real trainers have one each; 1,024 sockets is a
   * lot).
   */
  static final int REPLICAS_PER_CHANNEL = 32;

  /** The outcome of a finished test. */
  record Result(
      Scenario scenario,
      Instant startedAt,
      double elapsedSeconds,
      double measuredSeconds,
      Measurements measurements,
      List<RunState> runs,
      ServerFigures server,
      String loadBefore,
      String loadAfter,
      double cpuSeconds) {}

  private LoadTest() {}

  /**
   * The SDK logs every broken Train stream at INFO; a refused (injected) push breaks one, so a load
   * test would print thousands of such lines. Warnings still show.
   */
  private static final Logger SDK_LOG = Logger.getLogger("dev.roadless.optimizer.client");

  static Result run(Scenario sc, PrintStream progress) throws Exception {
    SDK_LOG.setLevel(Level.WARNING);
    Measurements m = new Measurements();
    List<ManagedChannel> channels = new ArrayList<>();
    int channelCount =
        Math.min(64, (sc.replicas() + REPLICAS_PER_CHANNEL - 1) / REPLICAS_PER_CHANNEL);
    ClientOptions options =
        new ClientOptions(
            Duration.ofSeconds(60),
            Duration.ofSeconds(120),
            5,
            Duration.ofMillis(50),
            Duration.ofSeconds(1),
            1 << 20,
            sc.transport() == Scenario.Transport.SHM,
            false);
    List<OptimizerClient> clients = new ArrayList<>();
    for (int c = 0; c <= channelCount; c++) { // the last one carries the reads
      ManagedChannel ch =
          sc.security().plaintext() && sc.security().token().isBlank()
              ? Channels.plaintext(sc.host(), sc.port()).build()
              : Channels.secure(sc.target(), sc.security().channelCredentials()).build();
      channels.add(ch);
      clients.add(new OptimizerClient(ch, options));
    }
    List<ShardedClient> sharded = new ArrayList<>();
    try {
      if (!sc.shardTargets().isEmpty()) {
        RunSpec spec = spec(sc);
        for (int c = 0; c <= channelCount; c++) {
          List<OptimizerClient> shards = new ArrayList<>();
          for (String target : sc.shardTargets()) {
            ManagedChannel ch =
                sc.security().plaintext() && sc.security().token().isBlank()
                    ? Channels.plaintext(Scenario.host(target), Scenario.port(target)).build()
                    : Channels.secure(target, sc.security().channelCredentials()).build();
            channels.add(ch);
            shards.add(new OptimizerClient(ch, options));
          }
          sharded.add(new ShardedClient(shards, spec));
        }
      }
      List<RunState> runs =
          createRuns(sc, clients.get(channelCount), sharded.isEmpty() ? null : sharded.get(0), m);
      PrometheusText before = scrape(sc, progress);
      String loadBefore = loadAverage();
      long cpuBefore = processCpuNanos();
      Instant startedAt = Instant.now();
      long start = System.nanoTime();
      long deadline = start + sc.duration().toNanos();
      List<Thread> replicas = new ArrayList<>();
      for (int i = 0; i < sc.replicas(); i++) {
        RunState run = runs.get(i / sc.replicasPerRun());
        long at = start + (long) ((double) sc.ramp().toNanos() * i / sc.replicas());
        Runnable w =
            new ReplicaWorker(
                sc,
                clients.get(i % channelCount),
                sharded.isEmpty() ? null : sharded.get(i % channelCount),
                run,
                i % sc.replicasPerRun(),
                at,
                deadline,
                m);
        replicas.add(start("replica-" + i, w));
      }
      AtomicBoolean stop = new AtomicBoolean();
      List<Thread> readers = new ArrayList<>();
      List<String> ids = runs.stream().map(r -> r.runId).toList();
      OptimizerClient reads = clients.get(channelCount);
      if (sc.readRate() > 0) {
        readers.add(
            start(
                "reader",
                new ReadLoop(Measurements.GET_PARAMETERS, sc.readRate(), reads, ids, m, stop)));
      }
      if (sc.statusRate() > 0) {
        readers.add(
            start(
                "status",
                new ReadLoop(Measurements.GET_RUN_STATUS, sc.statusRate(), reads, ids, m, stop)));
      }
      Ticker ticker = new Ticker(sc, m, start, progress);
      for (Thread t : replicas) {
        while (t.isAlive()) {
          t.join(ticker.untilNextMillis());
          ticker.maybeTick();
        }
      }
      stop.set(true);
      for (Thread t : readers) {
        t.join();
      }
      ticker.last();
      double elapsed = (System.nanoTime() - start) / 1e9;
      PrometheusText after = scrape(sc, progress);
      ServerFigures server =
          before == null || after == null
              ? ServerFigures.unavailable(
                  sc.metricsUrl().isEmpty() ? "metrics-url is off" : "scrape failed")
              : ServerFigures.between(before, after, ids);
      return new Result(
          sc,
          startedAt,
          elapsed,
          ticker.measuredSeconds(),
          m,
          runs,
          server,
          loadBefore,
          loadAverage(),
          (processCpuNanos() - cpuBefore) / 1e9);
    } finally {
      for (ManagedChannel ch : channels) {
        ch.shutdownNow();
      }
      for (ManagedChannel ch : channels) {
        ch.awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  /**
   * Creates every run, on the one optimizer or, when {@code sharded} is set, on every shard with
   * the shard's part of the spec.
   */
  private static List<RunState> createRuns(
      Scenario sc, OptimizerClient client, ShardedClient sharded, Measurements m) {
    List<RunState> runs = new ArrayList<>();
    for (int r = 0; r < sc.runs(); r++) {
      RunState run = new RunState(sc.runId(r), sc.replicasPerRun(), sc.params(), sc.tensors(), m);
      float[][] zeros = new float[run.names.size()][];
      for (int t = 0; t < zeros.length; t++) {
        zeros[t] = new float[run.gradient[t].length];
      }
      if (sharded != null) {
        sharded.createRun(run.runId);
        sharded.uploadInitialValues(run.runId, zeros);
      } else {
        client.createRun(run.runId, spec(sc));
        client.uploadInitialValues(run.runId, run.names, zeros);
      }
      runs.add(run);
    }
    return runs;
  }

  /** AdamW-SF over the tensors of {@link RunState}, one group. Every run has the same spec. */
  private static RunSpec spec(Scenario sc) {
    RunSpec.Builder spec =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(sc.replicasPerRun())
            .setMode(sc.sync() ? StepMode.STEP_MODE_SYNC : StepMode.STEP_MODE_ASYNC);
    if (!sc.sync()) {
      // Every replica of an ASYNC run may push once between two of another's pushes.
      spec.setMaxStaleness(sc.replicasPerRun());
    }
    ParameterGroup.Builder group = ParameterGroup.newBuilder().setName("all");
    for (int t = 0; t < sc.tensors(); t++) {
      int size = sc.params() / sc.tensors() + (t < sc.params() % sc.tensors() ? 1 : 0);
      spec.addTensors(TensorDescriptor.newBuilder().setName("t" + t).addShape(size));
      group.addTensorNames("t" + t);
    }
    return spec.addParameterGroups(group).build();
  }

  private static PrometheusText scrape(Scenario sc, PrintStream progress) {
    if (sc.metricsUrl().isEmpty()) {
      return null;
    }
    try {
      return PrometheusText.scrape(sc.metricsUrl());
    } catch (Exception e) {
      progress.println("loadtest: cannot read " + sc.metricsUrl() + ": " + e);
      return null;
    }
  }

  /** This tool's own CPU time: on one machine with the server, the two share the cores. */
  private static long processCpuNanos() {
    if (ManagementFactory.getOperatingSystemMXBean()
        instanceof com.sun.management.OperatingSystemMXBean os) {
      return os.getProcessCpuTime();
    }
    return 0;
  }

  /** This machine's 1, 5 and 15 minute load averages, or "" where /proc has none. */
  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  private static Thread start(String name, Runnable r) {
    Thread t = new Thread(r, "loadtest-" + name);
    t.setDaemon(true);
    t.start();
    return t;
  }
}
