package dev.roadless.optimizer.e2e;

import dev.roadless.optimizer.OptimizerServerMain;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The optimizer server in its own JVM, on a loopback port, as a real process. */
final class ServerProcess implements AutoCloseable {
  private final Process process;
  private final Path log;
  final int port;

  private ServerProcess(Process process, Path log, int port) {
    this.process = process;
    this.log = log;
    this.port = port;
  }

  /** A port that was free a moment ago, so a restarted server can take the same one. */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  static ServerProcess start(int port, Path snapshotDir, Path work, String... extra)
      throws Exception {
    Path portFile = Files.createTempFile(work, "port", ".txt");
    Files.delete(portFile);
    Path log = Files.createTempFile(work, "server", ".log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx1g");
    cmd.add("--add-modules=jdk.incubator.vector"); // as the image runs it
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(OptimizerServerMain.class.getName());
    cmd.add("--port=" + port);
    cmd.add("--port-file=" + portFile);
    cmd.add("--metrics-port=-1");
    cmd.add("--threads=1");
    cmd.add("--drain-seconds=2");
    if (snapshotDir != null) {
      cmd.add("--snapshot-dir=" + snapshotDir);
    }
    if (List.of(extra).stream().noneMatch(f -> f.startsWith("--tls-cert="))) {
      cmd.add("--plaintext=true"); // the TLS runs pass their certificate and access file
    }
    cmd.addAll(List.of(extra));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!Files.exists(portFile) || Files.readString(portFile).isBlank()) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        p.destroyForcibly();
        throw new IllegalStateException("server did not start:\n" + Files.readString(log));
      }
      Thread.sleep(20); // polling a file another process writes; there is nothing to latch on
    }
    return new ServerProcess(p, log, Integer.parseInt(Files.readString(portFile).trim()));
  }

  /** SIGKILL: no drain, no final snapshot. */
  void kill() throws InterruptedException {
    process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
  }

  String log() throws IOException {
    return Files.readString(log);
  }

  /** SIGTERM and wait for the drain. */
  @Override
  public void close() throws Exception {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
  }
}
