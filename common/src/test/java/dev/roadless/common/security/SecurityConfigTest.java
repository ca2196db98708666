package dev.roadless.common.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.config.Settings;
import io.grpc.InsecureServerCredentials;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** TLS unless plaintext is asked for; missing files and bad values named at start-up. */
class SecurityConfigTest {
  private static SecurityConfig parse(Map<String, String> env, String... args) {
    return SecurityConfig.from(Settings.parse(SecurityConfig.allKeys(), args, env), true);
  }

  @Test
  void from_noTlsFiles_refusedUnlessPlaintextAskedFor() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> parse(Map.of()));
    assertTrue(e.getMessage().contains("ROADLESS_TLS_CERT"), e.getMessage());
    SecurityConfig plain = parse(Map.of("ROADLESS_PLAINTEXT", "true"));
    assertTrue(plain.plaintext());
    assertTrue(plain.serverCredentials() instanceof InsecureServerCredentials);
    assertNull(
        plain.authorization(
            io.prometheus.metrics.model.registry.PrometheusRegistry.defaultRegistry));
    assertEquals("127.0.0.1", plain.metricsAddress());
    assertEquals(-1, plain.healthPort());
  }

  @Test
  void from_unreadableFileOrBadValue_refusedNamingTheKey() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> parse(Map.of(), "--tls-cert=/nonexistent/c.pem", "--tls-key=/nonexistent/k"));
    assertTrue(e.getMessage().contains("access-file"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> parse(Map.of(), "--plaintext=true", "--token-file=/nonexistent/t"));
    assertTrue(e.getMessage().contains("ROADLESS_TOKEN_FILE"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> parse(Map.of(), "--plaintext=yes"));
    assertThrows(
        IllegalArgumentException.class,
        () -> parse(Map.of(), "--plaintext=true", "--tls-client-auth=sometimes"));
  }

  @Test
  void toString_neverShowsTheToken() {
    SecurityConfig c = parse(Map.of("ROADLESS_TOKEN", "hunter2"), "--plaintext=true");
    assertEquals("hunter2", c.token());
    assertFalse(c.toString().contains("hunter2"), c.toString());
  }
}
