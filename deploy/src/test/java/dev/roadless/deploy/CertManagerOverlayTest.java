package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1Volume;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The optional cert-manager component, rendered in the {@code cert-manager} overlay (and so also
 * through every overlay test, its Issuer and Certificates against {@link CertManagerSchema}): the
 * server certificate lands in the Secret every service mounts, names every host a Roadless client
 * dials, and keys are PKCS#8 (what the Java services read); the checkpoint service's client
 * certificate carries its identity.
 */
class CertManagerOverlayTest {
  private static final Overlay OVERLAY = Overlay.named("cert-manager");

  @SuppressWarnings("unchecked")
  private static Map<String, Object> spec(String kind, String name) {
    List<Map<String, Object>> found = new ArrayList<>();
    for (StrictYaml.Document d : OVERLAY.documents) {
      Map<String, Object> meta = (Map<String, Object>) d.tree().get("metadata");
      if (kind.equals(d.tree().get("kind")) && name.equals(meta.get("name"))) {
        assertEquals("roadless", meta.get("namespace"), kind + " " + name);
        found.add((Map<String, Object>) d.tree().get("spec"));
      }
    }
    assertEquals(1, found.size(), kind + " " + name);
    return found.get(0);
  }

  @Test
  void serverCertificate_isTheSecretEveryServiceMounts_fromTheIssuerInTheOverlay() {
    Map<String, Object> tls = spec("Certificate", "roadless-tls");
    assertEquals("roadless-tls", tls.get("secretName"));
    @SuppressWarnings("unchecked")
    Map<String, Object> issuer = (Map<String, Object>) tls.get("issuerRef");
    assertEquals("Issuer", issuer.get("kind"));
    spec("Issuer", String.valueOf(issuer.get("name")));
    Set<String> workloads = new TreeSet<>();
    for (Overlay.Workload w : OVERLAY.workloads()) {
      for (V1Volume v : Overlay.nullToEmpty(w.template().getSpec().getVolumes())) {
        if (v.getSecret() != null && "roadless-tls".equals(v.getSecret().getSecretName())) {
          workloads.add(w.name());
        }
      }
    }
    assertTrue(
        workloads.containsAll(Set.of("optimizer", "trainer", "checkpoint")), workloads.toString());
  }

  @Test
  void serverCertificate_namesEveryHostAClientDials() {
    @SuppressWarnings("unchecked")
    List<String> names = (List<String>) spec("Certificate", "roadless-tls").get("dnsNames");
    List<String> hosts = new ArrayList<>();
    for (Overlay.Placed p : OVERLAY.containers()) {
      OVERLAY
          .environment(p.container())
          .forEach(
              (key, value) -> {
                if (key.endsWith("_TARGET") || key.endsWith("_TARGETS")) {
                  for (String target : value.split(",")) {
                    hosts.add(host(target.replace("{shard}", "0")));
                  }
                }
              });
    }
    assertFalse(hosts.isEmpty());
    for (String host : hosts) {
      assertTrue(names.stream().anyMatch(n -> covers(n, host)), host + " not in " + names);
    }
  }

  @Test
  void keysArePkcs8_andTheCheckpointServicesIdentityIsItsCommonName() {
    for (String name : List.of("roadless-tls", "roadless-checkpoint-client")) {
      @SuppressWarnings("unchecked")
      Map<String, Object> key = (Map<String, Object>) spec("Certificate", name).get("privateKey");
      assertEquals("PKCS8", key.get("encoding"), name);
    }
    Map<String, Object> client = spec("Certificate", "roadless-checkpoint-client");
    assertEquals("checkpoint-service", client.get("commonName"));
    assertTrue(((List<?>) client.get("usages")).contains("client auth"));
  }

  @Test
  void schema_refusesUnknownFieldsWrongTypesAndMissingRequiredOnes() {
    String head = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\n";
    var unknown =
        assertThrows(
            ManifestException.class,
            () ->
                StrictYaml.parseAll(
                    head + "spec: {secretName: s, issuerRef: {name: i}, dnsName: [a]}\n"));
    assertTrue(
        unknown.getMessage().contains("Certificate.spec.dnsName is not a field"),
        unknown.getMessage());
    var missing =
        assertThrows(
            ManifestException.class, () -> StrictYaml.parseAll(head + "spec: {secretName: s}\n"));
    assertTrue(missing.getMessage().contains("spec.issuerRef is required"), missing.getMessage());
    var wrong =
        assertThrows(
            ManifestException.class,
            () ->
                StrictYaml.parseAll(
                    head
                        + "spec: {secretName: s, issuerRef: {name: i}, privateKey: {encoding: PEM, size: \"256\"}, duration: 90d}\n"));
    assertTrue(wrong.getMessage().contains("encoding must be one of"), wrong.getMessage());
    assertTrue(wrong.getMessage().contains("size should be Integer"), wrong.getMessage());
    assertTrue(wrong.getMessage().contains("duration '90d' does not match"), wrong.getMessage());
    var kind =
        assertThrows(
            ManifestException.class,
            () ->
                StrictYaml.parseAll(
                    "apiVersion: cert-manager.io/v1\nkind: Order\nmetadata: {name: o}\n"));
    assertTrue(kind.getMessage().contains("unknown kind"), kind.getMessage());
  }

  /** The host of a gRPC target: dns:///host:port, dns:host:port or host:port. */
  private static String host(String target) {
    String t = target.strip().replaceFirst("^dns:(///)?", "");
    int colon = t.lastIndexOf(':');
    return colon < 0 ? t : t.substring(0, colon);
  }

  /** An x509 DNS name, with a wildcard standing for exactly one leftmost label. */
  private static boolean covers(String name, String host) {
    if (name.startsWith("*.")) {
      int dot = host.indexOf('.');
      return dot > 0 && host.substring(dot + 1).equals(name.substring(2));
    }
    return name.equals(host);
  }
}
