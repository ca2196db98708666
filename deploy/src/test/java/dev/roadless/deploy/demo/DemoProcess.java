package dev.roadless.deploy.demo;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The local demo as its user runs it: a separate JVM ({@link LocalDemo}'s main on this module's
 * classpath) that starts the real services from their jars in the repository. Output goes to files
 * the test reads; {@link #close} stops the demo and anything it left behind.
 */
final class DemoProcess implements AutoCloseable {
  /** The repository root; the build passes it, so the tests run from any directory. */
  static final Path REPO =
      Path.of(System.getProperty("roadless.repo.dir", "..")).toAbsolutePath().normalize();

  private final Process process;
  private final Path out;
  private final Path stdout;
  private final Path stderr;

  private DemoProcess(Process process, Path out, Path stdout, Path stderr) {
    this.process = process;
    this.out = out;
    this.stdout = stdout;
    this.stderr = stderr;
  }

  /** Starts the demo writing to {@code out} with extra flags; fails if the services are unbuilt. */
  static DemoProcess start(Path out, String... flags) throws IOException {
    for (String module : List.of("optimizer-service", "trainer-service", "checkpoint-service")) {
      Path jar = REPO.resolve(module).resolve("target").resolve(module + "-all.jar");
      assertTrue(
          Files.isRegularFile(jar),
          jar + " is missing: the demo tests need the packaged services (./mvnw -B verify)");
    }
    Files.createDirectories(out);
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(LocalDemo.class.getName());
    cmd.add("--repo=" + REPO);
    cmd.add("--out=" + out.resolve("demo-out"));
    cmd.addAll(List.of(flags));
    Path stdout = out.resolve("stdout.txt");
    Path stderr = out.resolve("stderr.txt");
    Process p =
        new ProcessBuilder(cmd)
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile())
            .start();
    return new DemoProcess(p, out.resolve("demo-out"), stdout, stderr);
  }

  Path out() {
    return out;
  }

  Process process() {
    return process;
  }

  String stdout() throws IOException {
    return Files.readString(stdout, StandardCharsets.UTF_8);
  }

  String stderr() throws IOException {
    return Files.readString(stderr, StandardCharsets.UTF_8);
  }

  /** Waits for the demo to exit; returns its exit status. */
  int awaitExit(Duration timeout) throws Exception {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      fail("the demo did not finish within " + timeout + "; output:\n" + stdout() + stderr());
    }
    return process.exitValue();
  }

  /** Waits until the demo's standard output or error contains {@code text}. */
  void awaitOutput(String text, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!(stdout().contains(text) || stderr().contains(text))) {
      if (!process.isAlive() || System.nanoTime() > deadline) {
        fail("no '" + text + "' from the demo; output:\n" + stdout() + stderr());
      }
      TimeUnit.MILLISECONDS.sleep(100); // output lands in a file; nothing to latch on
    }
  }

  /** The trainer replica processes the demo started (real JVMs, found by their jar). */
  List<ProcessHandle> trainers() {
    return process
        .descendants()
        .filter(
            h ->
                h.info()
                    .commandLine()
                    .map(c -> c.contains("trainer-service-all.jar"))
                    .orElse(false))
        .toList();
  }

  @Override
  public void close() throws Exception {
    List<ProcessHandle> children = process.descendants().toList();
    Signals.resume(children);
    process.destroy();
    if (!process.waitFor(90, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
    children.forEach(ProcessHandle::destroyForcibly);
  }
}
