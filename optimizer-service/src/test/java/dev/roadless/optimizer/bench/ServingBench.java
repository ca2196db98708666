package dev.roadless.optimizer.bench;

import dev.roadless.optimizer.OptimizerServerMain;
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
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The serving benchmark: the optimizer server and its clients as separate processes on loopback,
 * AdamW-SF over {@code --params} float32 parameters (default 10M, in 10 tensors).
 *
 * <ol>
 *   <li>The floor: the same bytes as one round trip (40 MB there, 40 MB back per 10M parameters)
 *       through a raw loopback TCP socket between two processes, no gRPC, no step.
 *   <li>One replica: push + step + pull round trip, median and p90 over the timed steps.
 *   <li>Two SYNC replicas in two processes: steps per second.
 * </ol>
 *
 * <p>Both runs go once per transport: {@code tcp} (the tensors in gRPC chunks over the loopback
 * socket, what a replica on another host gets) and {@code shm} (the replica's shared-memory
 * segment, what a replica on the server's host gets; gRPC still carries every push and answer).
 *
 * <p>Every line also gives the CPU time and minor page faults per step of the server and of each
 * client process, and the load average before and after: on a shared machine the CPU per step is
 * the steadier figure.
 *
 * <p>Run: {@code ./mvnw -q -pl optimizer-service -am -Pserving-bench process-test-classes}, with
 * {@code -Dserving.args="all params=10000000 warmup=50 steps=60"} to change the size and the number
 * of untimed and timed steps; {@code runs=one} or {@code runs=two} runs only one part. When the
 * class is run directly, the system properties {@code serving.serverJvm} and {@code
 * serving.clientJvm} replace the JVM flags of the server and client processes (for example to add a
 * flight recording).
 */
public final class ServingBench {
  private ServingBench() {}

  public static void main(String[] args) throws Exception {
    String mode = args.length > 0 ? args[0] : "all";
    switch (mode) {
      case "client" -> client(args);
      case "echo" -> echo(args);
      case "all" -> orchestrate(args);
      default -> throw new IllegalArgumentException("usage: ServingBench [all|client ...]");
    }
  }

  private static void orchestrate(String[] args) throws Exception {
    long params = 10_000_000;
    // Enough for C2 to settle: with fewer steps the compiler still takes a fifth of the CPU.
    int warmup = 50;
    int steps = 40;
    String which = "floor,one,two";
    String transports = "tcp,shm";
    int serverThreads = 2;
    for (String a : args) {
      if (a.startsWith("server-threads=")) {
        serverThreads = Integer.parseInt(a.substring(15));
      }
      if (a.startsWith("transport=")) {
        transports = a.substring(10);
      }
      if (a.startsWith("runs=")) {
        which = a.substring(5);
      }
      if (a.startsWith("params=")) {
        params = Long.parseLong(a.substring(7));
      }
      if (a.startsWith("warmup=")) {
        warmup = Integer.parseInt(a.substring(7));
      }
      if (a.startsWith("steps=")) {
        steps = Integer.parseInt(a.substring(6));
      }
    }
    Path work = Files.createTempDirectory("roadless-bench");
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Process server =
        java(
            jvmFlags(
                "serving.serverJvm",
                "-Xmx6g -XX:+UseParallelGC --add-modules=jdk.incubator.vector"),
            OptimizerServerMain.class.getName(),
            "--port=" + port,
            "--metrics-port=-1",
            "--threads=" + serverThreads,
            "--plaintext=true",
            "--port-file=" + work.resolve("port"));
    try {
      while (!Files.exists(work.resolve("port"))) {
        Thread.sleep(50);
      }
      System.out.printf(
          "serving bench: %,d float32 parameters (%.0f MB per tensor set), AdamW-SF, loopback%n",
          params, params * 4 / 1e6);
      System.out.println("load average before: " + loadAverage());
      if (which.contains("floor")) {
        System.out.println(
            "floor, raw loopback TCP, no gRPC: " + rawTcpFloor(params * 4, warmup, steps));
      }
      for (String transport : transports.split(",")) {
        if (which.contains("one")) {
          List<String> one = runClients(server, port, "one-" + transport, 1, params, warmup, steps);
          one.forEach(
              line ->
                  System.out.println(
                      "1 replica  " + transport + " push+step+pull round trip: " + line));
        }
        if (which.contains("two")) {
          List<String> two = runClients(server, port, "two-" + transport, 2, params, warmup, steps);
          two.forEach(line -> System.out.println("2 replicas " + transport + " SYNC: " + line));
        }
      }
      System.out.println("load average after: " + loadAverage());
    } finally {
      server.destroy();
      server.waitFor(30, TimeUnit.SECONDS);
      Files.deleteIfExists(work.resolve("port"));
      Files.deleteIfExists(work);
    }
  }

  private static List<String> runClients(
      Process server, int port, String run, int replicas, long params, int warmup, int steps)
      throws Exception {
    List<Process> clients = new ArrayList<>();
    for (int r = 0; r < replicas; r++) {
      clients.add(
          java(
              jvmFlags("serving.clientJvm", "-Xmx3g -XX:+UseParallelGC"),
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
            serverCpu -= cpuNanos(server);
            serverFaults -= minorFaults(server.pid());
          } else if (line.equals("TIMED end")) {
            serverCpu += cpuNanos(server);
            serverFaults += minorFaults(server.pid());
          } else if (line.startsWith("RESULT ")) {
            out.add(line.substring(7));
          } else {
            System.err.println(line);
          }
        }
      }
      p.waitFor();
    }
    // Replica 0 marks the timed steps; the server's CPU over them, per step.
    out.add(
        String.format(
            "server CPU %.1f ms, %d page faults per step",
            serverCpu / 1e6 / steps, serverFaults / steps));
    return out;
  }

  private static long cpuNanos(Process p) {
    return p.info().totalCpuDuration().map(java.time.Duration::toNanos).orElse(0L);
  }

  /** Minor page faults of a process so far (Linux; 0 elsewhere): fresh memory being touched. */
  private static long minorFaults(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      // Fields after the command name, which is in parentheses and may contain spaces.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Long.parseLong(f[7]);
    } catch (java.io.IOException | RuntimeException e) {
      return 0;
    }
  }

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (java.io.IOException e) {
      return "unknown";
    }
  }

  private static void client(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    String run = args[2];
    int replica = Integer.parseInt(args[3]);
    int replicas = Integer.parseInt(args[4]);
    long params = Long.parseLong(args[5]);
    int warmup = Integer.parseInt(args[6]);
    int steps = Integer.parseInt(args[7]);
    boolean shm = run.endsWith("-shm");
    ManagedChannel channel = Channels.plaintext("127.0.0.1", port).build();
    OptimizerClient client =
        new OptimizerClient(channel, ClientOptions.defaults().withSharedMemory(shm));
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
        (com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    long cpu0 = 0;
    long gc0 = 0;
    long faults0 = 0;
    for (int i = 0; i < warmup + steps; i++) {
      if (i == warmup) {
        System.out.println("TIMED start");
        System.out.flush();
        cpu0 = os.getProcessCpuTime();
        gc0 = gcMillis();
        faults0 = minorFaults(ProcessHandle.current().pid());
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
    long faults = (minorFaults(ProcessHandle.current().pid()) - faults0) / steps;
    System.out.println("TIMED end");
    Arrays.sort(nanos);
    System.out.printf(
        "RESULT replica %d: median %.1f ms, p90 %.1f ms, min %.1f ms per step, %.1f steps/s over %d steps"
            + " (client CPU %.1f ms, GC pauses %.1f ms, %d page faults per step)%n",
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

  /**
   * The floor of the tcp transport on this machine: a child process echoes {@code bytes} back for
   * every {@code bytes} it receives over one loopback TCP connection (direct buffers, TCP_NODELAY).
   */
  private static String rawTcpFloor(long bytes, int warmup, int steps) throws Exception {
    try (java.nio.channels.ServerSocketChannel listen =
        java.nio.channels.ServerSocketChannel.open()) {
      listen.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
      int port = ((java.net.InetSocketAddress) listen.getLocalAddress()).getPort();
      Process echo =
          java(
              List.of("-Xmx256m"),
              ServingBench.class.getName(),
              "echo",
              Integer.toString(port),
              Long.toString(bytes));
      try (java.nio.channels.SocketChannel s = listen.accept()) {
        s.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(Math.toIntExact(bytes));
        long[] nanos = new long[steps];
        for (int i = 0; i < warmup + steps; i++) {
          long t0 = System.nanoTime();
          buf.clear();
          while (buf.hasRemaining()) {
            s.write(buf);
          }
          buf.clear();
          while (buf.hasRemaining()) {
            if (s.read(buf) < 0) {
              throw new java.io.EOFException("echo process ended");
            }
          }
          if (i >= warmup) {
            nanos[i - warmup] = System.nanoTime() - t0;
          }
        }
        Arrays.sort(nanos);
        return String.format(
            "%.0f MB there and back: median %.1f ms, p90 %.1f ms, min %.1f ms over %d repeats",
            bytes / 1e6,
            nanos[steps / 2] / 1e6,
            nanos[steps * 9 / 10] / 1e6,
            nanos[0] / 1e6,
            steps);
      } finally {
        echo.destroy();
        echo.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  /** The floor's echo process: reads {@code bytes}, writes them back, until the socket closes. */
  private static void echo(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    int bytes = Integer.parseInt(args[2]);
    try (java.nio.channels.SocketChannel s =
        java.nio.channels.SocketChannel.open(new java.net.InetSocketAddress("127.0.0.1", port))) {
      s.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
      java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(bytes);
      while (true) {
        buf.clear();
        while (buf.hasRemaining()) {
          if (s.read(buf) < 0) {
            return;
          }
        }
        buf.flip();
        while (buf.hasRemaining()) {
          s.write(buf);
        }
      }
    }
  }

  private static long gcMillis() {
    return java.lang.management.ManagementFactory.getGarbageCollectorMXBeans().stream()
        .mapToLong(java.lang.management.GarbageCollectorMXBean::getCollectionTime)
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

  /**
   * JVM flags of a child process: the system property if set (space-separated), else the default.
   */
  private static List<String> jvmFlags(String property, String defaults) {
    String flags = System.getProperty(property, defaults).trim();
    return flags.isEmpty() ? List.of() : List.of(flags.split("\\s+"));
  }

  private static Process java(List<String> jvm, String main, String... args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvm);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(main);
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
  }
}
