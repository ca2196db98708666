package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1ContainerPort;
import io.kubernetes.client.openapi.models.V1Probe;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * gRPC servers are probed over grpc.health.v1, and get the time to drain and snapshot before they
 * are killed; their configuration points at paths they can write and ports they open.
 */
class LifecycleTest {
  /** Every long-running service: each must show up as a gRPC server in every overlay. */
  private static final Set<String> SERVERS = Set.of("optimizer", "trainer", "checkpoint");

  /** Time on top of preStop and drain for the final snapshot write and JVM exit. */
  private static final long SNAPSHOT_MARGIN_SECONDS = 10;

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyGrpcServer_hasGrpcStartupLivenessAndServiceReadinessProbes(String name) {
    Set<String> found = new TreeSet<>();
    for (Overlay.Placed p : Overlay.named(name).containers()) {
      Optional<Integer> grpcPort = port(p, "grpc");
      if (p.workload().kind().equals("Job") && grpcPort.isEmpty()) {
        continue; // a batch program such as the load test serves nothing
      }
      String where = name + ": " + p;
      assertTrue(grpcPort.isPresent(), where + " is long-running but has no port named grpc");
      // kubelet's gRPC probes speak no TLS: they ask the plaintext health-only port.
      Optional<Integer> healthPort = port(p, "health");
      assertTrue(healthPort.isPresent(), where + " has no port named health for the probes");
      int port = healthPort.get();
      found.add(p.container().getName());

      for (V1Probe probe :
          List.of(p.container().getStartupProbe(), p.container().getLivenessProbe())) {
        assertNotNull(probe, where + " lacks a startup or liveness probe");
        assertNotNull(probe.getGrpc(), where + " startup/liveness probe is not grpc");
        assertEquals(port, probe.getGrpc().getPort(), where);
      }
      V1Probe readiness = p.container().getReadinessProbe();
      assertNotNull(readiness, where + " readinessProbe");
      assertNotNull(readiness.getGrpc(), where + " readinessProbe is not grpc");
      assertEquals(port, readiness.getGrpc().getPort(), where);
      String service = readiness.getGrpc().getService();
      assertTrue(
          service != null && service.matches("roadless\\.[a-z]+\\.v1\\.[A-Za-z]+Service"),
          where + " readiness should ask for the service by name, not " + service);
    }
    assertEquals(SERVERS, found, name + ": gRPC servers");
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyGrpcServer_servesTlsWithAnAccessFile_neverPlaintext(String name) {
    Overlay overlay = Overlay.named(name);
    for (Overlay.Placed p : overlay.containers()) {
      Map<String, String> env = overlay.environment(p.container());
      String where = name + ": " + p;
      assertEquals(null, env.get("ROADLESS_PLAINTEXT"), where + " must not ask for plaintext");
      if (port(p, "grpc").isEmpty()) {
        assertNotNull(env.get("ROADLESS_TLS_CA"), where + " calls without a CA");
        continue;
      }
      for (String key : List.of("ROADLESS_TLS_CERT", "ROADLESS_TLS_KEY", "ROADLESS_ACCESS_FILE")) {
        String file = env.get(key);
        assertNotNull(file, where + " lacks " + key);
        assertTrue(
            p.container().getVolumeMounts().stream()
                .anyMatch(m -> file.startsWith(m.getMountPath() + "/")),
            where + " " + key + "=" + file + " is on no mounted volume");
      }
      assertEquals("" + port(p, "health").orElseThrow(), env.get("ROADLESS_HEALTH_PORT"), where);
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void everyGrpcServer_getsPreStopPlusDrainPlusMarginBeforeSigkill(String name) {
    Overlay overlay = Overlay.named(name);
    for (Overlay.Placed p : overlay.containers()) {
      if (port(p, "grpc").isEmpty()) {
        continue;
      }
      String where = name + ": " + p;
      String drain = overlay.environment(p.container()).get("ROADLESS_DRAIN_SECONDS");
      assertNotNull(drain, where + " has no ROADLESS_DRAIN_SECONDS in its ConfigMap");
      var lifecycle = p.container().getLifecycle();
      assertNotNull(lifecycle, where + " has no preStop");
      assertNotNull(lifecycle.getPreStop(), where + " has no preStop");
      assertNotNull(lifecycle.getPreStop().getSleep(), where + " preStop should sleep");
      long preStop = lifecycle.getPreStop().getSleep().getSeconds();
      assertTrue(preStop >= 3, where + " preStop " + preStop + " s is too short to deregister");
      Long grace = p.pod().getTerminationGracePeriodSeconds();
      assertNotNull(grace, where + " terminationGracePeriodSeconds");
      long needed = preStop + Long.parseLong(drain) + SNAPSHOT_MARGIN_SECONDS;
      assertTrue(
          grace >= needed,
          where
              + " grace "
              + grace
              + " s < preStop "
              + preStop
              + " + drain "
              + drain
              + " + margin");
    }
  }

  @ParameterizedTest
  @FieldSource("dev.roadless.deploy.Overlay#NAMES")
  void configuredPortsAndDirectories_matchThePod(String name) {
    Overlay overlay = Overlay.named(name);
    for (Overlay.Placed p : overlay.containers()) {
      String where = name + ": " + p;
      Map<String, String> env = overlay.environment(p.container());
      port(p, "grpc")
          .ifPresent(
              port -> assertEquals("" + port, env.get("ROADLESS_PORT"), where + " ROADLESS_PORT"));
      port(p, "metrics")
          .ifPresent(
              port -> {
                assertEquals("" + port, env.get("ROADLESS_METRICS_PORT"), where);
                Map<String, String> annotations =
                    p.workload().template().getMetadata().getAnnotations();
                assertNotNull(annotations, where + " has no Prometheus annotations");
                assertEquals("true", annotations.get("prometheus.io/scrape"), where);
                assertEquals("" + port, annotations.get("prometheus.io/port"), where);
                assertEquals("/metrics", annotations.get("prometheus.io/path"), where);
              });
      // With a read-only root file system, a directory is writable only on a mounted volume.
      env.forEach(
          (key, value) -> {
            if (key.endsWith("_DIR") && value != null && !value.isEmpty()) {
              boolean mounted =
                  Overlay.nullToEmpty(p.container().getVolumeMounts()).stream()
                      .anyMatch(
                          m ->
                              value.startsWith(m.getMountPath() + "/")
                                  && !Boolean.TRUE.equals(m.getReadOnly()));
              assertTrue(mounted, where + " " + key + "=" + value + " is on no writable volume");
            }
          });
    }
  }

  private static Optional<Integer> port(Overlay.Placed p, String portName) {
    return Overlay.nullToEmpty(p.container().getPorts()).stream()
        .filter(port -> portName.equals(port.getName()))
        .map(V1ContainerPort::getContainerPort)
        .findFirst();
  }
}
