package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** Every overlay renders and every rendered object parses strictly into a known kind. */
class OverlayRenderTest {
  /** The kinds the deployment is made of; anything else (a CRD, a typo'd kind) is a mistake. */
  private static final Set<String> KINDS =
      Set.of(
          "Namespace",
          "ConfigMap",
          "Service",
          "PersistentVolumeClaim",
          "StatefulSet",
          "Deployment",
          "Job",
          "PodDisruptionBudget",
          "NetworkPolicy",
          "Issuer", // cert-manager's, in the cert-manager overlay only
          "Certificate");

  @Test
  void overlaysDirectory_listsExactlyTheTestedOverlays() throws IOException {
    Set<String> onDisk;
    try (Stream<Path> dirs = Files.list(Kustomize.k8sDir().resolve("overlays"))) {
      onDisk =
          dirs.filter(Files::isDirectory)
              .map(p -> p.getFileName().toString())
              .collect(Collectors.toCollection(TreeSet::new));
    }
    assertEquals(new TreeSet<>(Overlay.NAMES), onDisk);
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void render_everyOverlay_parsesIntoKnownKinds(String name) {
    Overlay overlay = Overlay.named(name);
    assertTrue(overlay.documents.size() >= 15, name + ": only " + overlay.documents.size());
    for (var object : overlay.objects()) {
      assertTrue(KINDS.contains(object.getKind()), name + ": unexpected kind " + object.getKind());
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void render_everyOverlay_hasTheWholeDeployment(String name) {
    Overlay overlay = Overlay.named(name);
    List<String> workloads = overlay.workloads().stream().map(Object::toString).toList();
    assertTrue(
        workloads.containsAll(
            List.of("StatefulSet/optimizer", "Job/trainer", "Deployment/checkpoint")),
        name + ": " + workloads);
  }
}
