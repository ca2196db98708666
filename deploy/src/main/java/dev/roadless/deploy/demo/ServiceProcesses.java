package dev.roadless.deploy.demo;

import dev.roadless.optimizer.client.Readiness;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The demo's child processes: each service a real JVM from its runnable jar, its output in a log
 * file, its port read from a port file, its readiness from its gRPC health. Closing stops them all
 * (SIGTERM, so they drain), also on Ctrl-C through the JVM's shutdown hook.
 */
final class ServiceProcesses implements AutoCloseable {
  private final Path repo;
  private final Path logs;
  private final Duration timeout;
  private final Map<String, Process> processes = new LinkedHashMap<>();

  /**
   * @param timeout how long each service may take to listen, and then to report SERVING
   */
  ServiceProcesses(Path repo, Path logs, Duration timeout) throws IOException {
    this.repo = repo;
    this.logs = Files.createDirectories(logs);
    this.timeout = timeout;
  }

  /**
   * Starts {@code <module>/target/<module>-all.jar} with flags and extra environment variables;
   * returns its gRPC port once it listens (it writes its port file then).
   */
  int start(
      String name, String module, List<String> jvm, List<String> flags, Map<String, String> env)
      throws IOException, InterruptedException {
    Path jar = repo.resolve(module).resolve("target").resolve(module + "-all.jar");
    if (!Files.isRegularFile(jar)) {
      throw new DemoException(
          jar + " is missing: build first with ./mvnw -B -q -DskipTests package");
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
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log(name).toFile());
    builder.environment().putAll(env);
    Process p = builder.start();
    synchronized (processes) {
      processes.put(name, p);
    }
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!Files.exists(portFile) || Files.readString(portFile).isBlank()) {
      if (!p.isAlive()) {
        throw exited(name, p, "before it listened");
      }
      if (System.nanoTime() > deadline) {
        throw new DemoException(
            name + " did not listen within " + timeout.toSeconds() + " s; see " + log(name));
      }
      Thread.sleep(50); // the child writes the file once it listens; nothing to latch on
    }
    return Integer.parseInt(Files.readString(portFile, StandardCharsets.US_ASCII).trim());
  }

  /**
   * Returns once {@code name}'s health reports {@code service} SERVING; fails at once if the
   * process exits meanwhile, and after the start-up timeout otherwise.
   */
  void awaitServing(String name, Channel channel, String service) {
    Process p;
    synchronized (processes) {
      p = processes.get(name);
    }
    try (Context.CancellableContext wait = Context.current().withCancellation()) {
      p.onExit().thenRun(() -> wait.cancel(null));
      wait.run(() -> Readiness.awaitServing(channel, service, name, timeout));
    } catch (StatusRuntimeException e) {
      if (!p.isAlive()) {
        throw exited(name, p, "before it was ready");
      }
      throw new DemoException(e.getStatus().getDescription() + "; see " + log(name));
    }
  }

  private DemoException exited(String name, Process p, String when) {
    return new DemoException(
        name + " exited with status " + p.exitValue() + " " + when + "; see " + log(name));
  }

  private Path log(String name) {
    return logs.resolve(name + ".log");
  }

  @Override
  public void close() {
    List<Process> all;
    synchronized (processes) {
      all = new ArrayList<>(processes.values());
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
