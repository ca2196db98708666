package dev.roadless.optimizer.bench;

import dev.roadless.optimizer.client.Channels;
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
import io.grpc.ManagedChannel;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One replica of a serving run, as its own process: creates the run (AdamW-SF, SYNC, 10 equal
 * tensors), replica 0 uploads the initial values, then {@code warmup} untimed and {@code steps}
 * timed push + step + pull round trips. Prints "TIMED start" / "TIMED end" around the timed steps
 * (replica 0's mark the server's window) and one "RESULT ..." line.
 */
final class ServingReplica {
  private ServingReplica() {}

  /** What {@link #runAll} measured: each replica's RESULT line and the server's per-step cost. */
  record Outcome(List<String> replicaLines, double serverCpuMs, long serverFaultsPerStep) {
    String serverLine() {
      return String.format(
          "server CPU %.1f ms, %d minor page faults per step", serverCpuMs, serverFaultsPerStep);
    }
  }

  /**
   * Starts {@code replicas} replica processes of run {@code run} against the server and waits for
   * them; the server's CPU and page faults are read around replica 0's timed steps.
   */
  static Outcome runAll(
      long serverPid, int port, String run, int replicas, long params, int warmup, int steps)
      throws Exception {
    List<Process> clients = new ArrayList<>();
    for (int r = 0; r < replicas; r++) {
      clients.add(
          ChildJvm.java(
              ChildJvm.flags("serving.clientJvm", ChildJvm.CLIENT_JVM),
              ServingBench.class.getName(),
              "client",
              Integer.toString(port),
              run,
              Integer.toString(r),
              Integer.toString(replicas),
              Long.toString(params),
              Integer.toString(warmup),
              Integer.toString(steps)));
    }
    List<String> out = new ArrayList<>();
    long serverCpu = 0;
    long serverFaults = 0;
    for (Process p : clients) {
      try (BufferedReader reader =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = reader.readLine()) != null) {
          if (line.equals("TIMED start")) {
            serverCpu -= ProcStats.cpuNanos(serverPid);
            serverFaults -= ProcStats.minorFaults(serverPid);
          } else if (line.equals("TIMED end")) {
            serverCpu += ProcStats.cpuNanos(serverPid);
            serverFaults += ProcStats.minorFaults(serverPid);
          } else if (line.startsWith("RESULT ")) {
            out.add(line.substring(7));
          } else {
            System.err.println(line);
          }
        }
      }
      if (p.waitFor() != 0) {
        throw new IllegalStateException("replica process of " + run + " exited " + p.exitValue());
      }
    }
    return new Outcome(out, serverCpu / 1e6 / steps, serverFaults / steps);
  }

  /** The replica process: {@code client PORT RUN REPLICA REPLICAS PARAMS WARMUP STEPS}. */
  static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    String run = args[2];
    int replica = Integer.parseInt(args[3]);
    int replicas = Integer.parseInt(args[4]);
    long params = Long.parseLong(args[5]);
    int warmup = Integer.parseInt(args[6]);
    int steps = Integer.parseInt(args[7]);
    boolean shm = run.endsWith("-shm");
    ManagedChannel channel = Channels.plaintext("127.0.0.1", port).build();
    // Pipelined steps are a client option, off by default: client-jvm=...,-Dserving.early=true.
    boolean early = Boolean.getBoolean("serving.early");
    OptimizerClient client =
        new OptimizerClient(
            channel, ClientOptions.defaults().withSharedMemory(shm).withEarlyParameters(early));
    RunSpec spec = spec(params, replicas);
    List<String> names = spec.getTensorsList().stream().map(TensorDescriptor::getName).toList();
    float[][] grad = new float[names.size()][];
    SplittableRandom random = new SplittableRandom(replica);
    for (int t = 0; t < grad.length; t++) {
      grad[t] = new float[(int) spec.getTensors(t).getShape(0)];
      for (int i = 0; i < grad[t].length; i++) {
        grad[t][i] = (float) random.nextGaussian() * 1e-3f;
      }
    }
    client.createRun(run, spec);
    if (replica == 0) {
      client.uploadInitialValues(run, names, grad);
    }
    ReplicaSession session =
        new ReplicaSession(client, run, replica, DataType.DATA_TYPE_FLOAT32, true);
    Parameters y = waitForValues(session);
    long[] nanos = new long[steps];
    long start = 0;
    var os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long pid = ProcessHandle.current().pid();
    long cpu0 = 0;
    long gc0 = 0;
    long faults0 = 0;
    for (int i = 0; i < warmup + steps; i++) {
      if (i == warmup) {
        System.out.println("TIMED start");
        System.out.flush();
        cpu0 = os.getProcessCpuTime();
        gc0 = gcMillis();
        faults0 = ProcStats.minorFaults(pid);
        start = System.nanoTime();
      }
      long t0 = System.nanoTime();
      y = session.next(y, grad);
      if (i == 0 && session.usingSharedMemory() != shm) {
        throw new IllegalStateException(
            "replica " + replica + " asked for shm=" + shm + " but got the other transport");
      }
      if (i >= warmup) {
        nanos[i - warmup] = System.nanoTime() - t0;
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double cpuMs = (os.getProcessCpuTime() - cpu0) / 1e6 / steps;
    double gcMs = (gcMillis() - gc0) / (double) steps;
    long faults = (ProcStats.minorFaults(pid) - faults0) / steps;
    System.out.println("TIMED end");
    Arrays.sort(nanos);
    System.out.printf(
        "RESULT replica %d: median %.1f ms, p90 %.1f ms, min %.1f ms per step, %.2f steps/s over"
            + " %d steps (client CPU %.1f ms, GC pauses %.1f ms, %d minor page faults per step)%n",
        replica,
        nanos[steps / 2] / 1e6,
        nanos[steps * 9 / 10] / 1e6,
        nanos[0] / 1e6,
        steps / seconds,
        steps,
        cpuMs,
        gcMs,
        faults);
    channel.shutdownNow();
  }

  private static long gcMillis() {
    return ManagementFactory.getGarbageCollectorMXBeans().stream()
        .mapToLong(GarbageCollectorMXBean::getCollectionTime)
        .sum();
  }

  private static Parameters waitForValues(ReplicaSession session) throws InterruptedException {
    while (true) {
      try {
        return session.current();
      } catch (io.grpc.StatusRuntimeException e) {
        Thread.sleep(20); // replica 0 is still uploading the initial values
      }
    }
  }

  private static RunSpec spec(long params, int replicas) {
    int tensors = 10;
    RunSpec.Builder b =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(replicas)
            .setMode(StepMode.STEP_MODE_SYNC);
    ParameterGroup.Builder g = ParameterGroup.newBuilder().setName("all");
    for (int t = 0; t < tensors; t++) {
      String name = "layer" + t + ".weight";
      b.addTensors(TensorDescriptor.newBuilder().setName(name).addShape(params / tensors));
      g.addTensorNames(name);
    }
    return b.addParameterGroups(g).build();
  }
}
