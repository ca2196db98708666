package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1Container;
import io.kubernetes.client.openapi.models.V1Job;
import io.kubernetes.client.openapi.models.V1PodDisruptionBudget;
import io.kubernetes.client.openapi.models.V1Service;
import io.kubernetes.client.openapi.models.V1StatefulSet;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** The pieces find each other: names, replica counts and targets agree across objects. */
class TopologyTest {
  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void optimizer_isOneStatefulPodPerShardBehindAHeadlessServiceAndAPdb(String name) {
    Overlay overlay = Overlay.named(name);
    V1StatefulSet optimizer = overlay.one(V1StatefulSet.class, "optimizer");
    var spec = optimizer.getSpec();
    int shards = shards(overlay);
    assertEquals(shards, spec.getReplicas(), name);
    V1Service service = overlay.one(V1Service.class, spec.getServiceName());
    assertEquals("None", service.getSpec().getClusterIP(), name + ": the Service must be headless");
    var podLabels = spec.getTemplate().getMetadata().getLabels();
    assertTrue(podLabels.entrySet().containsAll(service.getSpec().getSelector().entrySet()), name);

    var claims = spec.getVolumeClaimTemplates();
    assertEquals(1, claims.size(), name);
    String claim = claims.get(0).getMetadata().getName();
    V1Container container = spec.getTemplate().getSpec().getContainers().get(0);
    assertTrue(container.getVolumeMounts().stream().anyMatch(m -> m.getName().equals(claim)), name);

    V1PodDisruptionBudget pdb = overlay.one(V1PodDisruptionBudget.class, "optimizer");
    assertEquals(shards, pdb.getSpec().getMinAvailable().getIntValue(), name);
    assertEquals(
        spec.getSelector().getMatchLabels(), pdb.getSpec().getSelector().getMatchLabels(), name);
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void trainerReplicaCount_agreesInJobConfigAndCheckpointTargets(String name) {
    Overlay overlay = Overlay.named(name);
    V1Job job = overlay.one(V1Job.class, "trainer");
    var spec = job.getSpec();
    assertEquals("Indexed", spec.getCompletionMode(), name);
    int replicas = spec.getCompletions();
    assertEquals(replicas, spec.getParallelism(), name + ": every replica runs at once (SYNC)");

    V1Container trainer = spec.getTemplate().getSpec().getContainers().get(0);
    var env = overlay.environment(trainer);
    assertEquals("" + replicas, env.get("ROADLESS_REPLICAS"), name + ": trainer-config");
    var replica =
        trainer.getEnv().stream().filter(e -> e.getName().equals("ROADLESS_REPLICA")).findFirst();
    assertTrue(replica.isPresent(), name + ": ROADLESS_REPLICA");
    assertEquals(
        "metadata.annotations['batch.kubernetes.io/job-completion-index']",
        replica.get().getValueFrom().getFieldRef().getFieldPath(),
        name);

    // trainer-<i>.<subdomain>: indexed Job pods are named <job>-<index>.
    String subdomain = spec.getTemplate().getSpec().getSubdomain();
    assertEquals("None", overlay.one(V1Service.class, subdomain).getSpec().getClusterIP(), name);
    List<String> expected =
        IntStream.range(0, replicas)
            .mapToObj(i -> "dns:///trainer-" + i + "." + subdomain + ":" + env.get("ROADLESS_PORT"))
            .toList();
    var checkpoint =
        overlay.workload("Deployment", "checkpoint").template().getSpec().getContainers().get(0);
    String targets = overlay.environment(checkpoint).get("ROADLESS_TRAINER_TARGETS");
    assertNotNull(targets, name + ": ROADLESS_TRAINER_TARGETS");
    assertEquals(expected, List.of(targets.split(",")), name + ": checkpoint-config");
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void optimizerTarget_isTheStatefulPodsGrpcPortEverywhere(String name) {
    Overlay overlay = Overlay.named(name);
    var optimizer = overlay.one(V1StatefulSet.class, "optimizer").getSpec();
    String expected =
        "dns:///optimizer-0."
            + optimizer.getServiceName()
            + ":"
            + overlay
                .environment(optimizer.getTemplate().getSpec().getContainers().get(0))
                .get("ROADLESS_PORT");
    for (Overlay.Placed p : overlay.containers()) {
      String target = overlay.environment(p.container()).get("ROADLESS_OPTIMIZER_TARGET");
      if (!p.workload().name().equals("optimizer")) {
        assertEquals(expected, target, name + ": " + p);
      }
    }
  }

  /** The checkpoint service's S, set from the optimizer's replica count (1: not sharded). */
  private static int shards(Overlay overlay) {
    var checkpoint =
        overlay.workload("Deployment", "checkpoint").template().getSpec().getContainers().get(0);
    String s = overlay.environment(checkpoint).get("ROADLESS_OPTIMIZER_SHARDS");
    return s == null ? 1 : Math.max(1, Integer.parseInt(s));
  }

  @Test
  void sharded_shardTargetsAreTheStatefulPodsByOrdinal() {
    Overlay overlay = Overlay.named("sharded");
    var optimizer = overlay.one(V1StatefulSet.class, "optimizer").getSpec();
    assertEquals(3, optimizer.getReplicas());
    var checkpoint =
        overlay.workload("Deployment", "checkpoint").template().getSpec().getContainers().get(0);
    var env = overlay.environment(checkpoint);
    assertEquals("3", env.get("ROADLESS_OPTIMIZER_SHARDS"));
    String port =
        overlay
            .environment(optimizer.getTemplate().getSpec().getContainers().get(0))
            .get("ROADLESS_PORT");
    for (int i = 0; i < 3; i++) {
      assertEquals(
          "dns:///optimizer-" + i + "." + optimizer.getServiceName() + ":" + port,
          env.get("ROADLESS_OPTIMIZER_SHARD_TARGET").replace("{shard}", "" + i));
    }
    // The trainers push to and read from every shard.
    V1Container trainer =
        overlay
            .one(V1Job.class, "trainer")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    var trainerEnv = overlay.environment(trainer);
    assertEquals("3", trainerEnv.get("ROADLESS_OPTIMIZER_SHARDS"));
    for (int i = 0; i < 3; i++) {
      assertEquals(
          "dns:///optimizer-" + i + "." + optimizer.getServiceName() + ":" + port,
          trainerEnv.get("ROADLESS_OPTIMIZER_SHARD_TARGET").replace("{shard}", "" + i));
    }
    Overlay withLoadTest = Overlay.named("sharded-loadtest");
    V1Container loadtest =
        withLoadTest
            .one(V1Job.class, "optimizer-loadtest")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    var loadtestEnv = withLoadTest.environment(loadtest);
    assertEquals("3", loadtestEnv.get("ROADLESS_OPTIMIZER_SHARDS"));
    assertEquals(
        "optimizer-2.optimizer:" + port,
        loadtestEnv.get("ROADLESS_OPTIMIZER_SHARD_TARGET").replace("{shard}", "2"));
  }

  @Test
  void loadtest_runsTheToolInTheDeployedOptimizerImageWithItsConfig() {
    Overlay overlay = Overlay.named("loadtest");
    var job = overlay.one(V1Job.class, "optimizer-loadtest").getSpec();
    V1Container loadtest = job.getTemplate().getSpec().getContainers().get(0);
    String optimizerImage =
        overlay
            .one(V1StatefulSet.class, "optimizer")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getImage();
    assertEquals(optimizerImage, loadtest.getImage());
    assertEquals(
        List.of(
            "java",
            "-XX:MaxRAMPercentage=75",
            "-XX:+ExitOnOutOfMemoryError",
            "-jar",
            "/app/roadless-loadtest.jar"),
        loadtest.getCommand());
    var env = overlay.environment(loadtest);
    for (String key : List.of("ROADLESS_REPLICAS", "ROADLESS_PARAMS", "ROADLESS_RUNS")) {
      assertTrue(Integer.parseInt(env.get(key)) > 0, key);
    }
    assertTrue(env.get("ROADLESS_METRICS_URL").startsWith("http://optimizer-0.optimizer:"));
    assertTrue(env.containsKey("ROADLESS_DURATION") && env.containsKey("ROADLESS_OBJECTIVES"));
    assertEquals(0, job.getBackoffLimit(), "a benchmark is not retried");
  }
}
