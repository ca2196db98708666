package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1ContainerPort;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The Dockerfiles cannot be built here (no Docker engine), so their promises are checked as text:
 * pinned bases, the non-root user, the JVM flags, the jar the manifests run and the ports the pods
 * declare.
 */
class DockerfileTest {
  private static final Pattern PINNED_BASE =
      Pattern.compile(
          "ARG (BUILD|RUNTIME)_IMAGE=eclipse-temurin:17\\.0\\.\\d+_\\d+-(jdk|jre)-jammy@sha256:[0-9a-f]{64}");
  private static final Pattern EXPOSE = Pattern.compile("(?m)^EXPOSE (.+)$");

  @ParameterizedTest
  @CsvSource({
    "optimizer-service, optimizer",
    "trainer-service, trainer",
    "checkpoint-service, checkpoint"
  })
  void dockerfile_isMultiStagePinnedNonRootAndMatchesTheManifests(String service, String container)
      throws IOException {
    Path file = Kustomize.k8sDir().resolveSibling("docker").resolve(service + ".Dockerfile");
    String text = Files.readString(file);

    for (String stage : List.of("BUILD", "RUNTIME")) {
      assertTrue(
          PINNED_BASE.matcher(text).results().anyMatch(m -> m.group(1).equals(stage)),
          file + ": " + stage + "_IMAGE must be eclipse-temurin 17 pinned by tag and digest");
    }
    assertTrue(text.contains("FROM ${BUILD_IMAGE} AS build"), file + ": build stage");
    assertTrue(text.contains("FROM ${RUNTIME_IMAGE}\n"), file + ": runtime stage");
    assertTrue(
        text.contains("-pl " + service + " -am") || text.contains("-pl " + service + ","),
        file + ": builds its own module");
    assertTrue(text.contains("\nUSER 10001:10001\n"), file + ": runs as 10001");
    String jar = "/app/" + service + "-all.jar";
    assertTrue(
        text.contains("\"-XX:MaxRAMPercentage=75\"") && text.contains("\"-jar\", \"" + jar + "\"]"),
        file + ": ENTRYPOINT java -XX:MaxRAMPercentage=75 ... -jar " + jar);

    Matcher expose = EXPOSE.matcher(text);
    assertTrue(expose.find(), file + ": EXPOSE");
    Set<Integer> exposed =
        Set.of(expose.group(1).trim().split("\\s+")).stream()
            .map(Integer::valueOf)
            .collect(Collectors.toCollection(TreeSet::new));
    Set<Integer> declared =
        Overlay.named("dev").containers().stream()
            .filter(p -> p.container().getName().equals(container))
            .flatMap(p -> p.container().getPorts().stream())
            .map(V1ContainerPort::getContainerPort)
            .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(declared, exposed, file + ": EXPOSE vs the pod's ports");
  }

  @Test
  void optimizerImage_shipsTheLoadTestJarTheJobRuns() throws IOException {
    String text =
        Files.readString(
            Kustomize.k8sDir().resolveSibling("docker").resolve("optimizer-service.Dockerfile"));

    assertTrue(text.contains("-pl optimizer-service,loadtest -am"), "builds roadless-loadtest");
    assertTrue(
        text.contains(
            "COPY --from=build --chmod=0444 /roadless-loadtest.jar /app/roadless-loadtest.jar"),
        "copies /app/roadless-loadtest.jar (the loadtest Job's -jar)");
  }
}
