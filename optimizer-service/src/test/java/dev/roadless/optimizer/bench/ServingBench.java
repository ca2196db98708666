package dev.roadless.optimizer.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The serving benchmark: the optimizer server and its clients as separate processes on loopback,
 * AdamW-SF over {@code params=} float32 parameters (default 10M, in 10 tensors).
 *
 * <ol>
 *   <li>{@code floor}: the same bytes as one round trip (40 MB there, 40 MB back per 10M
 *       parameters) through a raw loopback TCP socket between two processes, no gRPC, no step
 *       ({@link RawTcpFloor}).
 *   <li>{@code one}: one replica's push + step + pull round trip, median, p90 and minimum over the
 *       timed steps.
 *   <li>{@code two}: two SYNC replicas in two processes, steps per second.
 *   <li>{@code peer}: the same two runs against a PyTorch RPC parameter server stepping
 *       torch.optim.AdamW ({@link TorchPeer}), when torch is importable; then the ratios.
 *   <li>{@code memory}: resident memory per parameter of a fresh server ({@link MemoryBench}); only
 *       when asked for ({@code runs=memory}).
 * </ol>
 *
 * <p>{@code one} and {@code two} run once per transport: {@code tcp} (the tensors in gRPC chunks
 * over the loopback socket, what a replica on another host gets) and {@code shm} (the replica's
 * shared-memory segment, what a replica on the server's host gets; gRPC still carries every push
 * and answer). Every line also gives the CPU time and minor page faults per step of the server and
 * of each client process, and the load average before and after.
 *
 * <p>Run: {@code ./mvnw -q -pl optimizer-service -am -Pserving-bench process-test-classes
 * -Dserving.args="all params=10000000 warmup=50 steps=60"}. Options: {@code runs=} (default {@code
 * floor,one,two,peer}), {@code transport=} (default {@code tcp,shm}), {@code server-threads=}
 * (default 2), {@code params=} (a comma list for {@code memory}), {@code server-jvm=} and {@code
 * client-jvm=} (comma-separated JVM flags replacing the defaults in {@link ChildJvm}; the system
 * properties {@code serving.serverJvm} and {@code serving.clientJvm} do the same, space-separated).
 */
public final class ServingBench {
  private ServingBench() {}

  /** The bench's options, from {@code key=value} arguments. */
  record Options(
      List<Long> params, int warmup, int steps, String runs, String transports, int threads) {
    static Options parse(String[] args) {
      List<Long> params = List.of(10_000_000L);
      // Enough for C2 to settle: with fewer steps the compiler still takes a fifth of the CPU.
      int warmup = 50;
      int steps = 40;
      String runs = "floor,one,two,peer";
      String transports = "tcp,shm";
      int threads = 2;
      for (String a : args) {
        String value = a.substring(a.indexOf('=') + 1);
        if (a.startsWith("server-threads=")) {
          threads = Integer.parseInt(value);
        } else if (a.startsWith("transport=")) {
          transports = value;
        } else if (a.startsWith("runs=")) {
          runs = value;
        } else if (a.startsWith("params=")) {
          params = new ArrayList<>();
          for (String p : value.split(",")) {
            params.add(Long.parseLong(p));
          }
        } else if (a.startsWith("warmup=")) {
          warmup = Integer.parseInt(value);
        } else if (a.startsWith("steps=")) {
          steps = Integer.parseInt(value);
        } else if (a.startsWith("server-jvm=")) {
          System.setProperty("serving.serverJvm", value.replace(',', ' '));
        } else if (a.startsWith("client-jvm=")) {
          System.setProperty("serving.clientJvm", value.replace(',', ' '));
        }
      }
      return new Options(List.copyOf(params), warmup, steps, runs, transports, threads);
    }

    boolean has(String part) {
      return List.of(runs.split(",")).contains(part);
    }
  }

  public static void main(String[] args) throws Exception {
    String mode = args.length > 0 ? args[0] : "all";
    switch (mode) {
      case "client" -> ServingReplica.main(args);
      case "echo" -> RawTcpFloor.echo(args);
      case "all" -> run(Options.parse(args));
      default -> throw new IllegalArgumentException("usage: ServingBench [all|client|echo ...]");
    }
  }

  private static void run(Options o) throws Exception {
    if (o.has("memory")) {
      MemoryBench.run(o);
    }
    if (!(o.has("floor") || o.has("one") || o.has("two") || o.has("peer"))) {
      return;
    }
    long params = o.params().get(0);
    System.out.printf(
        "serving bench: %,d float32 parameters in 10 tensors (%.0f MB per tensor set),"
            + " AdamW-SF, loopback, %d warm-up + %d timed steps%n",
        params, params * 4 / 1e6, o.warmup(), o.steps());
    System.out.println("load average before: " + ProcStats.loadAverage());
    Figures ours = new Figures();
    if (o.has("floor")) {
      RawTcpFloor.Floor floor = RawTcpFloor.measure(params * 4, o.warmup(), o.steps());
      ours.floorMs = floor.medianMs();
      System.out.println("floor, raw loopback TCP, no gRPC: " + floor.line());
    }
    if (o.has("one") || o.has("two")) {
      try (ChildJvm.Server server = ChildJvm.startServer(o.threads(), List.of())) {
        System.out.println("server JVM flags: " + String.join(" ", server.flags()));
        for (String transport : o.transports().split(",")) {
          if (o.has("one")) {
            ServingReplica.Outcome one = clients(server, "one-" + transport, 1, params, o);
            String what = "1 replica  " + transport + " push+step+pull round trip: ";
            one.replicaLines().forEach(line -> System.out.println(what + line));
            System.out.println(what + one.serverLine());
            ours.oneMs.put(transport, median(one.replicaLines().get(0)));
          }
          if (o.has("two")) {
            ServingReplica.Outcome two = clients(server, "two-" + transport, 2, params, o);
            String what = "2 replicas " + transport + " SYNC: ";
            two.replicaLines().forEach(line -> System.out.println(what + line));
            System.out.println(what + two.serverLine());
            ours.twoRate.put(transport, slowestRate(two.replicaLines()));
          }
        }
      }
    }
    if (o.has("peer")) {
      String why = TorchPeer.unavailable();
      if (why != null) {
        System.out.println("peer (PyTorch RPC parameter server): not run, " + why);
      } else {
        TorchPeer.Result one = TorchPeer.run(1, params, o.warmup(), o.steps());
        one.lines().forEach(l -> System.out.println("1 replica  peer, TensorPipe tcp: " + l));
        TorchPeer.Result two = TorchPeer.run(2, params, o.warmup(), o.steps());
        two.lines().forEach(l -> System.out.println("2 replicas peer, TensorPipe tcp SYNC: " + l));
        ours.peerOneMs = one.medianMs();
        ours.peerTwoRate = two.stepsPerSecond();
      }
    }
    ours.printRatios();
    System.out.println("load average after: " + ProcStats.loadAverage());
  }

  private static ServingReplica.Outcome clients(
      ChildJvm.Server server, String run, int replicas, long params, Options o) throws Exception {
    return ServingReplica.runAll(
        server.pid(), server.port(), run, replicas, params, o.warmup(), o.steps());
  }

  private static final Pattern MEDIAN = Pattern.compile("median ([0-9.]+) ms");
  private static final Pattern RATE = Pattern.compile("([0-9.]+) steps/s");

  private static double median(String line) {
    Matcher m = MEDIAN.matcher(line);
    return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
  }

  private static double slowestRate(List<String> lines) {
    double rate = Double.POSITIVE_INFINITY;
    for (String line : lines) {
      Matcher m = RATE.matcher(line);
      if (m.find()) {
        rate = Math.min(rate, Double.parseDouble(m.group(1)));
      }
    }
    return rate;
  }

  /** One run's headline figures, for the ratio lines. */
  private static final class Figures {
    double floorMs = Double.NaN;
    double peerOneMs = Double.NaN;
    double peerTwoRate = Double.NaN;
    final java.util.Map<String, Double> oneMs = new java.util.LinkedHashMap<>();
    final java.util.Map<String, Double> twoRate = new java.util.LinkedHashMap<>();

    void printRatios() {
      oneMs.forEach(
          (transport, ms) -> {
            if (!Double.isNaN(peerOneMs)) {
              System.out.printf(
                  "ratio, 1 replica round trip, ours %s / peer: %.1f / %.1f ms = %.2f"
                      + " (targets: tcp at most 0.5, shm at most 0.33)%n",
                  transport, ms, peerOneMs, ms / peerOneMs);
            }
            if (transport.equals("tcp") && !Double.isNaN(floorMs)) {
              System.out.printf(
                  "ratio, 1 replica round trip, ours tcp / raw TCP floor: %.1f / %.1f ms = %.2f"
                      + " (target: below 1)%n",
                  ms, floorMs, ms / floorMs);
            }
          });
      twoRate.forEach(
          (transport, rate) -> {
            if (!Double.isNaN(peerTwoRate)) {
              System.out.printf(
                  "ratio, 2 SYNC replicas steps/s, ours %s / peer: %.2f / %.2f = %.2f"
                      + " (target: tcp at least 2, shm at least 3)%n",
                  transport, rate, peerTwoRate, rate / peerTwoRate);
            }
          });
    }
  }
}
