package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The optimizer's JVM memory settings (docs/BENCHMARKS.md, "Memory per parameter (issue 15)"): the
 * manifests run the image's settings, and the state server's memory is requested in full.
 */
class OptimizerMemoryTest {
  private static final Pattern IMAGE_OPTIONS =
      Pattern.compile("\nENV JAVA_TOOL_OPTIONS=\"([^\"]*)\"\n");

  static String imageOptions() throws IOException {
    String text =
        Files.readString(
            Kustomize.k8sDir().resolveSibling("docker").resolve("optimizer-service.Dockerfile"));
    Matcher m = IMAGE_OPTIONS.matcher(text);
    assertTrue(m.find(), "optimizer-service.Dockerfile: ENV JAVA_TOOL_OPTIONS=\"...\"");
    return m.group(1);
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void optimizer_runsTheImagesJvmSettingsWithItsMemoryRequestedInFull(String name)
      throws IOException {
    String image = imageOptions();
    assertTrue(image.contains("-XX:+UseSerialGC") && image.contains("-Xmn"), image);
    Overlay overlay = Overlay.named(name);
    int optimizers = 0;
    for (Overlay.Placed p : overlay.containers()) {
      String container = p.container().getName();
      if (container.equals("optimizer")) {
        optimizers++;
        assertEquals(
            image,
            overlay.environment(p.container()).get("JAVA_TOOL_OPTIONS"),
            name + ": " + p + " JAVA_TOOL_OPTIONS");
        var resources = p.container().getResources();
        assertEquals(
            resources.getLimits().get("memory"),
            resources.getRequests().get("memory"),
            name + ": " + p + " memory request = limit");
      } else if (container.equals("loadtest")) {
        // Same image, another program: the server's settings are not its own.
        assertEquals("", overlay.environment(p.container()).get("JAVA_TOOL_OPTIONS"), name);
      }
    }
    assertTrue(optimizers > 0, name + ": no optimizer container");
  }
}
