package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Runs {@code kubectl kustomize}: the same renderer {@code kubectl apply -k} uses. */
final class Kustomize {
  private static final long TIMEOUT_SECONDS = 60;

  private Kustomize() {}

  /** The kustomize tree, {@code deploy/k8s}, as the build passes it (or relative to deploy/). */
  static Path k8sDir() {
    return Path.of(System.getProperty("roadless.k8s.dir", "k8s")).toAbsolutePath().normalize();
  }

  /** Renders one kustomization directory; fails the test if kubectl is missing or refuses. */
  static String render(Path dir) {
    String kubectl = kubectl();
    Process process;
    try {
      process =
          new ProcessBuilder(List.of(kubectl, "kustomize", dir.toString()))
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
              .start();
    } catch (IOException e) {
      return fail("cannot run '" + kubectl + " kustomize': " + e.getMessage(), e);
    }
    CompletableFuture<String> stdout = readAsync(process.getInputStream());
    CompletableFuture<String> stderr = readAsync(process.getErrorStream());
    try {
      if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        return fail("kubectl kustomize " + dir + " took longer than " + TIMEOUT_SECONDS + " s");
      }
      if (process.exitValue() != 0) {
        return fail("kubectl kustomize " + dir + " failed:\n" + stderr.join());
      }
      return stdout.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return fail("interrupted while rendering " + dir, e);
    }
  }

  /**
   * kubectl from -Droadless.kubectl or the PATH. Missing kubectl is a failure, never a skip: CI has
   * it, and a validation that silently does nothing validates nothing.
   */
  private static String kubectl() {
    String configured = System.getProperty("roadless.kubectl", "");
    if (!configured.isEmpty()) {
      return configured;
    }
    for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      Path candidate = Path.of(dir.isEmpty() ? "." : dir, "kubectl");
      if (Files.isExecutable(candidate)) {
        return candidate.toString();
      }
    }
    return fail(
        "kubectl is not on the PATH. The deploy tests render every overlay with"
            + " 'kubectl kustomize' (kubectl 1.27 or newer, with kustomize v5); install kubectl"
            + " or point -Droadless.kubectl=/path/to/kubectl at one.");
  }

  private static CompletableFuture<String> readAsync(InputStream stream) {
    return CompletableFuture.supplyAsync(
        () -> {
          try (stream) {
            return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        });
  }
}
