package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.custom.Quantity;
import io.kubernetes.client.openapi.models.V1Namespace;
import io.kubernetes.client.openapi.models.V1PodSecurityContext;
import io.kubernetes.client.openapi.models.V1SecurityContext;
import io.kubernetes.client.openapi.models.V1Volume;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** Every pod is sized, non-root, read-only and unprivileged, and runs a pinned image. */
class PodHardeningTest {
  private static final long APP_USER = 10001;

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyContainer_hasCpuAndMemoryRequestsWithinLimits(String name) {
    for (Overlay.Placed p : Overlay.named(name).containers()) {
      var resources = p.container().getResources();
      assertNotNull(resources, name + ": " + p + " has no resources");
      Map<String, Quantity> requests =
          Objects.requireNonNullElse(resources.getRequests(), Map.of());
      Map<String, Quantity> limits = Objects.requireNonNullElse(resources.getLimits(), Map.of());
      for (String resource : List.of("cpu", "memory")) {
        assertTrue(requests.containsKey(resource), name + ": " + p + " requests no " + resource);
        assertTrue(limits.containsKey(resource), name + ": " + p + " limits no " + resource);
      }
      requests.forEach(
          (resource, request) -> {
            Quantity limit = limits.get(resource);
            assertTrue(
                limit == null || request.getNumber().compareTo(limit.getNumber()) <= 0,
                name + ": " + p + " requests more " + resource + " than its limit");
          });
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyContainer_runsAsNonRootReadOnlyAndUnprivileged(String name) {
    for (Overlay.Placed p : Overlay.named(name).containers()) {
      V1PodSecurityContext pod =
          Objects.requireNonNullElse(p.pod().getSecurityContext(), new V1PodSecurityContext());
      V1SecurityContext c =
          Objects.requireNonNullElse(p.container().getSecurityContext(), new V1SecurityContext());
      String where = name + ": " + p;

      assertEquals(
          Boolean.TRUE,
          firstNonNull(c.getRunAsNonRoot(), pod.getRunAsNonRoot()),
          where + " runAsNonRoot");
      assertEquals(
          APP_USER, firstNonNull(c.getRunAsUser(), pod.getRunAsUser()), where + " runAsUser");
      assertEquals(Boolean.TRUE, c.getReadOnlyRootFilesystem(), where + " readOnlyRootFilesystem");
      assertEquals(
          Boolean.FALSE, c.getAllowPrivilegeEscalation(), where + " allowPrivilegeEscalation");
      assertFalse(Boolean.TRUE.equals(c.getPrivileged()), where + " privileged");
      assertNotNull(c.getCapabilities(), where + " capabilities");
      assertEquals(List.of("ALL"), c.getCapabilities().getDrop(), where + " capabilities.drop");
      assertTrue(
          Overlay.nullToEmpty(c.getCapabilities().getAdd()).isEmpty(),
          where + " adds capabilities");
      var seccomp = firstNonNull(c.getSeccompProfile(), pod.getSeccompProfile());
      assertNotNull(seccomp, where + " seccompProfile");
      assertEquals("RuntimeDefault", seccomp.getType(), where + " seccompProfile");
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyContainer_hasAWritableTmpAndNoServiceAccountToken(String name) {
    for (Overlay.Placed p : Overlay.named(name).containers()) {
      var tmp =
          Overlay.nullToEmpty(p.container().getVolumeMounts()).stream()
              .filter(m -> "/tmp".equals(m.getMountPath()))
              .findFirst()
              .orElseThrow(() -> new AssertionError(name + ": " + p + " mounts nothing at /tmp"));
      V1Volume volume =
          Overlay.nullToEmpty(p.pod().getVolumes()).stream()
              .filter(v -> v.getName().equals(tmp.getName()))
              .findFirst()
              .orElseThrow(
                  () -> new AssertionError(name + ": " + p + " has no volume " + tmp.getName()));
      assertNotNull(volume.getEmptyDir(), name + ": " + p + " /tmp should be an emptyDir");
      assertNotNull(
          volume.getEmptyDir().getSizeLimit(), name + ": " + p + " /tmp without sizeLimit");
      assertEquals(Boolean.FALSE, p.pod().getAutomountServiceAccountToken(), name + ": " + p);
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyImage_isPinnedToAReleaseTag(String name) {
    for (Overlay.Placed p : Overlay.named(name).containers()) {
      String image = p.container().getImage();
      String reference = image.contains("@") ? image.substring(0, image.indexOf('@')) : image;
      String last = reference.substring(reference.lastIndexOf('/') + 1);
      String tag = last.contains(":") ? last.substring(last.indexOf(':') + 1) : "";
      assertFalse(tag.isEmpty(), name + ": " + p + " image " + image + " has no tag");
      assertFalse(tag.equals("latest"), name + ": " + p + " image " + image);
      assertEquals("IfNotPresent", p.container().getImagePullPolicy(), name + ": " + p);
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyObject_isInNamespaceRoadlessWithItsLabels(String name) {
    Overlay overlay = Overlay.named(name);
    for (var object : overlay.objects()) {
      var meta = object.getMetadata();
      String where = name + ": " + object.getKind() + " " + meta.getName();
      if (object instanceof V1Namespace) {
        assertEquals("roadless", meta.getName(), where);
        assertEquals(
            "restricted", meta.getLabels().get("pod-security.kubernetes.io/enforce"), where);
      } else {
        assertEquals("roadless", meta.getNamespace(), where);
      }
      assertEquals("roadless", meta.getLabels().get("app.kubernetes.io/part-of"), where);
      assertEquals("kustomize", meta.getLabels().get("app.kubernetes.io/managed-by"), where);
    }
    for (Overlay.Workload w : overlay.workloads()) {
      Map<String, String> labels = w.template().getMetadata().getLabels();
      for (String key :
          List.of(
              "app.kubernetes.io/name",
              "app.kubernetes.io/component",
              "app.kubernetes.io/part-of")) {
        assertTrue(labels.containsKey(key), name + ": " + w + " pod template lacks label " + key);
      }
    }
  }

  private static <T> T firstNonNull(T first, T second) {
    return first != null ? first : second;
  }
}
