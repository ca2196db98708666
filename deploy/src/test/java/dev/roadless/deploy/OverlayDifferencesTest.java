package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.custom.Quantity;
import io.kubernetes.client.openapi.models.V1Job;
import java.math.BigDecimal;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What the overlays change: GPUs for gpu trainers, small CPU pods and two replicas for dev. */
class OverlayDifferencesTest {
  private static final String GPU = "nvidia.com/gpu";

  @Test
  void gpuOverlay_trainersGetOneGpuOnGpuNodesWithTheCudaImage() {
    var pod = Overlay.named("gpu").one(V1Job.class, "trainer").getSpec().getTemplate().getSpec();
    var trainer = pod.getContainers().get(0);
    Map<String, Quantity> limits = trainer.getResources().getLimits();

    assertTrue(limits.containsKey(GPU), "gpu trainers must limit " + GPU);
    assertEquals(0, BigDecimal.ONE.compareTo(limits.get(GPU).getNumber()));
    assertTrue(trainer.getImage().endsWith("-cuda"), trainer.getImage());
    assertEquals("true", pod.getNodeSelector().get("nvidia.com/gpu.present"));
    assertTrue(pod.getTolerations().stream().anyMatch(t -> GPU.equals(t.getKey())));
  }

  @Test
  void gpuOverlay_onlyTrainersUseGpus() {
    for (Overlay.Placed p : Overlay.named("gpu").containers()) {
      if (!p.workload().name().equals("trainer")) {
        assertFalse(p.container().getResources().getLimits().containsKey(GPU), p.toString());
      }
    }
  }

  @Test
  void devOverlay_runsTwoCpuTrainersAndNoGpus() {
    Overlay dev = Overlay.named("dev");
    for (Overlay.Placed p : dev.containers()) {
      assertFalse(p.container().getResources().getLimits().containsKey(GPU), p.toString());
      assertFalse(p.container().getImage().endsWith("-cuda"), p.toString());
      assertTrue(
          p.pod().getNodeSelector() == null
              || !p.pod().getNodeSelector().containsKey("nvidia.com/gpu.present"));
    }
    assertEquals(2, dev.one(V1Job.class, "trainer").getSpec().getCompletions());
  }
}
