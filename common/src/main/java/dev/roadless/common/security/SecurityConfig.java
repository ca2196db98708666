package dev.roadless.common.security;

import dev.roadless.common.config.Settings;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The security settings every service shares, in the same typed {@link Settings} table as the rest
 * of its configuration: TLS for the server it runs ({@link #SERVER_KEYS}) and for the calls it
 * makes ({@link #CLIENT_KEYS}), the access file, and the metrics bind address. TLS is on unless
 * {@code plaintext=true} is asked for explicitly.
 */
public record SecurityConfig(
    boolean plaintext,
    Path tlsCert,
    Path tlsKey,
    Path tlsClientCa,
    TlsFiles.ClientAuth clientAuth,
    long reloadMillis,
    Path accessFile,
    String metricsAddress,
    int healthPort,
    Path tlsCa,
    Path tlsClientCert,
    Path tlsClientKey,
    Path tokenFile,
    String token) {

  /** Keys of a service's own gRPC server. */
  public static final List<Settings.Key> SERVER_KEYS =
      List.of(
          Settings.Key.text(
              "plaintext",
              "false",
              "true serves (and calls) gRPC without TLS: tests and local debugging only"),
          Settings.Key.text("tls-cert", "", "server certificate chain, PEM (required with TLS)"),
          Settings.Key.text("tls-key", "", "the server certificate's key, PKCS#8 PEM"),
          Settings.Key.text(
              "tls-client-ca",
              "",
              "CA bundle for client certificates (mutual TLS); empty: none asked for"),
          Settings.Key.text(
              "tls-client-auth",
              "optional",
              "with tls-client-ca: optional (a token will do) or require (every caller shows a"
                  + " certificate)"),
          Settings.Key.integer(
              "tls-reload-seconds",
              "30",
              1,
              86400,
              "how often certificate, key, CA and access files are checked for changes"),
          Settings.Key.text(
              "access-file",
              "",
              "identities, token hashes and grants (common/README.md); required with TLS"),
          Settings.Key.text(
              "metrics-address", "127.0.0.1", "address the /metrics endpoint binds to"),
          Settings.Key.integer(
              "health-port",
              "-1",
              -1,
              65535,
              "plaintext port serving grpc.health.v1 only (Kubernetes probes); -1 off"));

  /** Keys of the calls a service (or tool) makes to other Roadless services. */
  public static final List<Settings.Key> CLIENT_KEYS =
      List.of(
          Settings.Key.text(
              "tls-ca", "", "CA bundle that verifies the servers called; empty: the JDK's CAs"),
          Settings.Key.text("tls-client-cert", "", "client certificate for mutual TLS, PEM"),
          Settings.Key.text("tls-client-key", "", "its key, PKCS#8 PEM"),
          Settings.Key.text("token-file", "", "file holding this caller's bearer token"),
          Settings.Key.text(
              "token", "", "the bearer token itself (prefer ROADLESS_TOKEN or token-file)"));

  /** A service's own keys followed by {@code shared} (one of the lists here). */
  public static List<Settings.Key> with(List<Settings.Key> own, List<Settings.Key> shared) {
    List<Settings.Key> all = new ArrayList<>(own);
    all.addAll(shared);
    return List.copyOf(all);
  }

  /** The keys of a client-only tool (the load test): plaintext, then the client keys. */
  public static List<Settings.Key> clientOnlyKeys() {
    List<Settings.Key> all = new ArrayList<>(List.of(SERVER_KEYS.get(0)));
    all.addAll(CLIENT_KEYS);
    return List.copyOf(all);
  }

  /** Server keys then client keys. */
  public static List<Settings.Key> allKeys() {
    List<Settings.Key> all = new ArrayList<>(SERVER_KEYS);
    all.addAll(CLIENT_KEYS);
    return List.copyOf(all);
  }

  /**
   * Reads whichever of the keys the settings hold; throws IllegalArgumentException naming the key
   * when TLS is on and its files are missing.
   *
   * @param server whether a server is configured (its keys are then checked)
   */
  public static SecurityConfig from(Settings s, boolean server) {
    String plain = s.text("plaintext").strip().toLowerCase(Locale.ROOT);
    if (!plain.equals("true") && !plain.equals("false")) {
      throw new IllegalArgumentException(
          "plaintext (ROADLESS_PLAINTEXT) must be true or false, got '" + plain + "'");
    }
    boolean plaintext = plain.equals("true");
    String auth = orEmpty(s, "tls-client-auth", "optional").strip().toUpperCase(Locale.ROOT);
    if (!auth.equals("OPTIONAL") && !auth.equals("REQUIRE")) {
      throw new IllegalArgumentException(
          "tls-client-auth (ROADLESS_TLS_CLIENT_AUTH) must be optional or require");
    }
    SecurityConfig c =
        new SecurityConfig(
            plaintext,
            path(s, "tls-cert"),
            path(s, "tls-key"),
            path(s, "tls-client-ca"),
            TlsFiles.ClientAuth.valueOf(auth),
            s.text("tls-reload-seconds") == null ? 30_000 : s.integer("tls-reload-seconds") * 1000L,
            path(s, "access-file"),
            orEmpty(s, "metrics-address", "127.0.0.1"),
            s.text("health-port") == null ? -1 : s.integer("health-port"),
            path(s, "tls-ca"),
            path(s, "tls-client-cert"),
            path(s, "tls-client-key"),
            path(s, "token-file"),
            orEmpty(s, "token", ""));
    if (server && !plaintext && (c.tlsCert == null || c.tlsKey == null)) {
      throw new IllegalArgumentException(
          "tls-cert and tls-key (ROADLESS_TLS_CERT, ROADLESS_TLS_KEY) are required; set"
              + " plaintext=true to serve without TLS (tests and local debugging only)");
    }
    if (server && !plaintext && c.accessFile == null) {
      throw new IllegalArgumentException(
          "access-file (ROADLESS_ACCESS_FILE) is required with TLS: it says who may call what");
    }
    if ((c.tlsClientCert == null) != (c.tlsClientKey == null)) {
      throw new IllegalArgumentException("tls-client-cert and tls-client-key go together");
    }
    String[] keys = {
      "tls-cert",
      "tls-key",
      "tls-client-ca",
      "access-file",
      "tls-ca",
      "tls-client-cert",
      "tls-client-key",
      "token-file"
    };
    Path[] files = {
      c.tlsCert,
      c.tlsKey,
      c.tlsClientCa,
      c.accessFile,
      c.tlsCa,
      c.tlsClientCert,
      c.tlsClientKey,
      c.tokenFile
    };
    for (int i = 0; i < keys.length; i++) {
      if (files[i] != null && !java.nio.file.Files.isReadable(files[i])) {
        throw new IllegalArgumentException(
            keys[i]
                + " ("
                + "ROADLESS_"
                + keys[i].replace('-', '_').toUpperCase(Locale.ROOT)
                + "): cannot read "
                + files[i]);
      }
    }
    return c;
  }

  private static Path path(Settings s, String key) {
    return s.text(key) == null ? null : s.path(key);
  }

  private static String orEmpty(Settings s, String key, String def) {
    return s.text(key) == null ? def : s.text(key);
  }

  /** The server's transport credentials: TLS from the files, or plaintext when asked for. */
  public ServerCredentials serverCredentials() {
    if (plaintext) {
      return InsecureServerCredentials.create();
    }
    try {
      return TlsFiles.server(tlsCert, tlsKey, tlsClientCa, clientAuth, reloadMillis);
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalArgumentException("cannot load TLS files: " + e.getMessage(), e);
    }
  }

  /**
   * The interceptor that authenticates and authorizes every call, or null when there is no access
   * file (only allowed with plaintext=true). Install it with {@code ServerBuilder.intercept}.
   */
  public Authorization.Builder authorization(PrometheusRegistry registry) {
    if (accessFile == null) {
      return null;
    }
    try {
      return Authorization.builder(
          AccessControl.fromFile(accessFile, Math.min(reloadMillis, 5_000)), new Audit(registry));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read access-file " + accessFile, e);
    }
  }

  /** Credentials for calls to other Roadless services: TLS (or plaintext) plus the token. */
  public ChannelCredentials channelCredentials() {
    ChannelCredentials transport;
    if (plaintext) {
      transport = InsecureChannelCredentials.create();
    } else {
      try {
        transport = TlsFiles.client(tlsCa, tlsClientCert, tlsClientKey, reloadMillis);
      } catch (IOException | GeneralSecurityException e) {
        throw new IllegalArgumentException("cannot load TLS files: " + e.getMessage(), e);
      }
    }
    BearerToken bearer;
    try {
      bearer =
          tokenFile != null
              ? BearerToken.fromFile(tokenFile, plaintext)
              : token.isBlank() ? null : BearerToken.of(token, plaintext);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read token-file " + tokenFile, e);
    }
    return bearer == null ? transport : CompositeChannelCredentials.create(transport, bearer);
  }

  @Override
  public String toString() {
    // Logged at start-up: never the token itself.
    return "SecurityConfig[plaintext="
        + plaintext
        + ", tlsCert="
        + tlsCert
        + ", tlsClientCa="
        + tlsClientCa
        + ", clientAuth="
        + clientAuth
        + ", accessFile="
        + accessFile
        + ", metricsAddress="
        + metricsAddress
        + ", tlsCa="
        + tlsCa
        + ", tlsClientCert="
        + tlsClientCert
        + ", tokenFile="
        + tokenFile
        + ", token="
        + (token.isBlank() ? "" : "***")
        + "]";
  }
}
