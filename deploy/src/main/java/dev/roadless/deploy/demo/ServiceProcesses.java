package dev.roadless.deploy.demo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The demo's child processes: each service a real JVM from its runnable jar, its output in a log
 * file, its port read from a port file. Closing stops them all (SIGTERM, so they drain), also on
 * Ctrl-C through the JVM's shutdown hook.
 */
final class ServiceProcesses implements AutoCloseable {
  private final Path repo;
  private final Path logs;
  private final List<Process> processes = new ArrayList<>();

  ServiceProcesses(Path repo, Path logs) throws IOException {
    this.repo = repo;
    this.logs = Files.createDirectories(logs);
  }

  /** Starts {@code <module>/target/<module>-all.jar} with flags; returns its gRPC port. */
  int start(String name, String module, List<String> jvm, List<String> flags) throws Exception {
    return start(name, module, jvm, flags, java.util.Map.of());
  }

  /** As {@link #start(String, String, List, List)} with extra environment variables. */
  int start(
      String name,
      String module,
      List<String> jvm,
      List<String> flags,
      java.util.Map<String, String> env)
      throws Exception {
    Path jar = repo.resolve(module).resolve("target").resolve(module + "-all.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(
          jar + " is missing: build first with ./mvnw -q -DskipTests package");
    }
    Path portFile = logs.resolve(name + ".port");
    Files.deleteIfExists(portFile);
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvm);
    cmd.add("-jar");
    cmd.add(jar.toString());
    cmd.addAll(flags);
    cmd.add("--port=0");
    cmd.add("--port-file=" + portFile);
    cmd.add("--metrics-port=-1");
    ProcessBuilder builder =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(logs.resolve(name + ".log").toFile());
    builder.environment().putAll(env);
    Process p = builder.start();
    synchronized (processes) {
      processes.add(p);
    }
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (!Files.exists(portFile) || Files.readString(portFile).isBlank()) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        throw new IllegalStateException(
            name + " did not start; see " + logs.resolve(name + ".log"));
      }
      Thread.sleep(50); // the child writes the file once it listens; nothing to latch on
    }
    return Integer.parseInt(Files.readString(portFile, StandardCharsets.US_ASCII).trim());
  }

  @Override
  public void close() {
    List<Process> all;
    synchronized (processes) {
      all = new ArrayList<>(processes);
      processes.clear();
    }
    all.forEach(Process::destroy);
    for (Process p : all) {
      try {
        if (!p.waitFor(40, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
  }
}
