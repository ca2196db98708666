package dev.roadless.optimizer.bench;

import dev.roadless.optimizer.OptimizerServerMain;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The benches' child processes: JVMs on this bench's class path, and the optimizer server. */
final class ChildJvm {
  private ChildJvm() {}

  /**
   * The server's JVM flags when {@code serving.serverJvm} is not set: the settings the image ships
   * with (deploy/docker/optimizer-service.Dockerfile), with the heap fixed instead of a share of a
   * container's memory. Measured in docs/BENCHMARKS.md, "Memory per parameter (issue 15)".
   */
  static final String SERVER_JVM =
      "-Xmx6g -XX:+UseSerialGC -Xmn128m --add-modules=jdk.incubator.vector";

  static final String CLIENT_JVM = "-Xmx3g -XX:+UseParallelGC";

  /** A started optimizer server on loopback, plaintext, metrics off. */
  record Server(Process process, int port, List<String> flags) implements AutoCloseable {
    long pid() {
      return process.pid();
    }

    @Override
    public void close() throws InterruptedException {
      process.destroy();
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    }
  }

  /** Starts a server with {@code serving.serverJvm} (or the defaults) plus {@code extra} flags. */
  static Server startServer(int threads, List<String> extra) throws Exception {
    Path work = Files.createTempDirectory("roadless-bench");
    Path portFile = work.resolve("port");
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    List<String> flags = new ArrayList<>(flags("serving.serverJvm", SERVER_JVM));
    flags.addAll(extra);
    Process p =
        java(
            flags,
            OptimizerServerMain.class.getName(),
            "--port=" + port,
            "--metrics-port=-1",
            "--threads=" + threads,
            "--plaintext=true",
            "--port-file=" + portFile);
    try {
      while (!Files.exists(portFile)) {
        if (!p.isAlive()) {
          throw new IllegalStateException("the server exited with " + p.exitValue());
        }
        Thread.sleep(50);
      }
    } finally {
      Files.deleteIfExists(portFile);
      Files.deleteIfExists(work);
    }
    return new Server(p, port, flags);
  }

  /** JVM flags of a child process: the system property if set (space-separated), else defaults. */
  static List<String> flags(String property, String defaults) {
    String flags = System.getProperty(property, defaults).trim();
    return flags.isEmpty() ? List.of() : List.of(flags.split("\\s+"));
  }

  /** A JVM running {@code main} on this JVM's class path; its stderr goes to ours. */
  static Process java(List<String> jvm, String main, String... args) throws Exception {
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
