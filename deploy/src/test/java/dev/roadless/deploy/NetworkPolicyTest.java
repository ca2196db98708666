package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1LabelSelector;
import io.kubernetes.client.openapi.models.V1NetworkPolicy;
import io.kubernetes.client.openapi.models.V1NetworkPolicyIngressRule;
import io.kubernetes.client.openapi.models.V1NetworkPolicyPeer;
import io.kubernetes.client.openapi.models.V1NetworkPolicyPort;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Ingress is denied by default; the optimizer's gRPC port admits exactly the trainer and checkpoint
 * pods (and the load test where it is deployed), its metrics port the monitoring namespace (and the
 * load test). The policies are evaluated as the API defines them, for matchLabels selectors.
 */
class NetworkPolicyTest {
  private static final int OPTIMIZER_GRPC = 50051;
  private static final int METRICS = 9464;

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void namespace_deniesIngressByDefault(String name) {
    List<V1NetworkPolicy> policies = Overlay.named(name).all(V1NetworkPolicy.class);
    assertTrue(
        policies.stream()
            .anyMatch(
                p ->
                    isEmpty(p.getSpec().getPodSelector())
                        && p.getSpec().getPolicyTypes().contains("Ingress")
                        && Overlay.nullToEmpty(p.getSpec().getIngress()).isEmpty()),
        name + ": no default-deny ingress policy");
    for (V1NetworkPolicy p : policies) {
      assertTrue(
          p.getSpec().getPolicyTypes().contains("Ingress"),
          name + ": " + p.getMetadata().getName());
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void optimizerGrpcPort_admitsOnlyTrainerAndCheckpointPods(String name) {
    Overlay overlay = Overlay.named(name);
    Set<String> expected = new TreeSet<>(Set.of("Job/trainer", "Deployment/checkpoint"));
    if (name.endsWith("loadtest")) { // loadtest, sharded-loadtest
      expected.add("Job/optimizer-loadtest");
    }
    assertEquals(expected, admittedWorkloads(overlay, OPTIMIZER_GRPC), name);
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void optimizerMetricsPort_admitsTheMonitoringNamespaceAndOnlyTheLoadTest(String name) {
    Overlay overlay = Overlay.named(name);
    var rules = rulesFor(overlay, optimizerLabels(overlay), METRICS);
    assertFalse(rules.isEmpty(), name + ": nothing may scrape the optimizer");
    boolean monitoring = false;
    for (V1NetworkPolicyIngressRule rule : rules) {
      for (V1NetworkPolicyPeer peer : rule.getFrom()) {
        if (peer.getNamespaceSelector() == null) {
          continue; // pods of this namespace: checked below
        }
        assertEquals(
            Map.of("kubernetes.io/metadata.name", "monitoring"),
            peer.getNamespaceSelector().getMatchLabels(),
            name);
        monitoring = true;
      }
    }
    assertTrue(monitoring, name + ": the monitoring namespace cannot scrape the optimizer");
    // The load test reads the server's /metrics before and after; no other pod may.
    Set<String> expected = name.endsWith("loadtest") ? Set.of("Job/optimizer-loadtest") : Set.of();
    assertEquals(expected, admittedWorkloads(overlay, METRICS), name);
  }

  /** Workloads in the namespace whose pods some policy admits to the optimizer's port. */
  private static Set<String> admittedWorkloads(Overlay overlay, int port) {
    Set<String> admitted = new TreeSet<>();
    for (V1NetworkPolicyIngressRule rule : rulesFor(overlay, optimizerLabels(overlay), port)) {
      for (V1NetworkPolicyPeer peer : rule.getFrom()) {
        assertNull(peer.getIpBlock(), overlay + ": ipBlock peer " + peer);
        if (peer.getNamespaceSelector() != null) {
          assertNull(peer.getPodSelector(), overlay + ": pods of other namespaces " + peer);
          continue; // another namespace's pods: checked by the metrics test
        }
        assertTrue(!isEmpty(peer.getPodSelector()), overlay + ": admits every pod " + peer);
        for (Overlay.Workload w : overlay.workloads()) {
          if (matches(peer.getPodSelector(), w.template().getMetadata().getLabels())) {
            admitted.add(w.toString());
          }
        }
      }
    }
    return admitted;
  }

  /** Ingress rules of the policies selecting these pods that open this port. */
  private static List<V1NetworkPolicyIngressRule> rulesFor(
      Overlay overlay, Map<String, String> podLabels, int port) {
    return overlay.all(V1NetworkPolicy.class).stream()
        .filter(p -> matches(p.getSpec().getPodSelector(), podLabels))
        .flatMap(p -> Overlay.nullToEmpty(p.getSpec().getIngress()).stream())
        .filter(rule -> opens(rule, port))
        .peek(
            rule ->
                assertTrue(
                    !Overlay.nullToEmpty(rule.getFrom()).isEmpty(),
                    overlay + ": a rule admits everyone to port " + port))
        .toList();
  }

  private static boolean opens(V1NetworkPolicyIngressRule rule, int port) {
    List<V1NetworkPolicyPort> ports = Overlay.nullToEmpty(rule.getPorts());
    if (ports.isEmpty()) {
      return true; // no ports: every port
    }
    for (V1NetworkPolicyPort p : ports) {
      assertTrue(p.getPort() != null && p.getPort().isInteger(), "use numeric ports: " + p);
      int from = p.getPort().getIntValue();
      int to = p.getEndPort() == null ? from : p.getEndPort();
      if (from <= port && port <= to) {
        return true;
      }
    }
    return false;
  }

  private static Map<String, String> optimizerLabels(Overlay overlay) {
    return overlay.workload("StatefulSet", "optimizer").template().getMetadata().getLabels();
  }

  private static boolean matches(V1LabelSelector selector, Map<String, String> labels) {
    assertTrue(
        Overlay.nullToEmpty(selector.getMatchExpressions()).isEmpty(),
        "this test evaluates matchLabels selectors only: " + selector);
    Map<String, String> required =
        selector.getMatchLabels() == null ? Map.of() : selector.getMatchLabels();
    return labels.entrySet().containsAll(required.entrySet());
  }

  private static boolean isEmpty(V1LabelSelector selector) {
    return selector == null
        || (Overlay.nullToEmpty(selector.getMatchExpressions()).isEmpty()
            && (selector.getMatchLabels() == null || selector.getMatchLabels().isEmpty()));
  }
}
