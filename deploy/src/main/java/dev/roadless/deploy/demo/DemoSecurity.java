package dev.roadless.deploy.demo;

import dev.roadless.common.security.AccessFile;
import dev.roadless.common.security.BearerToken;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The demo's TLS and identities, made at start into {@code <out>/pki}: a fresh CA, one server
 * certificate every service serves with (names localhost and 127.0.0.1), a client certificate for
 * the checkpoint service (mutual TLS: its identity is the CN {@code checkpoint-service}), bearer
 * tokens for the demo launcher and each trainer replica, and the access file that grants them:
 *
 * <ul>
 *   <li>{@code demo} (the launcher): operator on the run (status, x, checkpoints, trainers);
 *   <li>{@code trainer-r}: trainer and operator on the run (a replica creates its run);
 *   <li>{@code checkpoint-service}: operator on every run.
 * </ul>
 *
 * Nothing travels in cleartext and nobody else on the machine gets in: the key and token files are
 * owner-only.
 */
final class DemoSecurity {
  private static final Duration VALIDITY = Duration.ofDays(7);

  private final Path dir;
  private final List<String> trainerTokens = new ArrayList<>();
  private String demoToken;

  private DemoSecurity(Path dir) {
    this.dir = dir;
  }

  /** Makes the CA, certificates, tokens and access file for {@code run} and its replicas. */
  static DemoSecurity create(Path out, String run, int replicas)
      throws IOException, GeneralSecurityException {
    DemoSecurity s = new DemoSecurity(Files.createDirectories(out.resolve("pki")));
    DevPki pki = DevPki.create("roadless-demo-ca", VALIDITY);
    pki.writeCa(s.file("ca.pem"));
    pki.issue("roadless-demo-server", VALIDITY, s.file("server.pem"), s.file("server.key"));
    pki.issue(
        "checkpoint-service",
        VALIDITY,
        s.file("checkpoint-client.pem"),
        s.file("checkpoint-client.key"));
    StringBuilder access =
        new StringBuilder(
            "# Made by the demo at start: identity, sha256(token) or - (mTLS), run=role ...\n");
    s.demoToken = DevPki.newToken();
    s.writeToken("demo", s.demoToken);
    access.append(line("demo", s.demoToken, run + "=operator"));
    for (int r = 0; r < replicas; r++) {
      String token = DevPki.newToken();
      s.trainerTokens.add(token);
      s.writeToken("trainer-" + r, token);
      access.append(line("trainer-" + r, token, run + "=trainer " + run + "=operator"));
    }
    access.append("checkpoint-service - *=operator\n");
    s.writePrivate(s.file("access.txt"), access.toString());
    for (String key : List.of("server.key", "checkpoint-client.key")) {
      Files.setPosixFilePermissions(s.file(key), PosixFilePermissions.fromString("rw-------"));
    }
    return s;
  }

  private static String line(String identity, String token, String grants) {
    return identity + " " + AccessFile.sha256Hex(token) + " " + grants + "\n";
  }

  private void writeToken(String identity, String token) throws IOException {
    writePrivate(file(identity + ".token"), token + "\n");
  }

  private void writePrivate(Path file, String text) throws IOException {
    Files.deleteIfExists(file);
    Files.createFile(
        file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, text, StandardCharsets.UTF_8);
  }

  Path file(String name) {
    return dir.resolve(name);
  }

  /** The flags every service serves with: TLS, optional mutual TLS, the access file. */
  List<String> serverFlags() {
    return List.of(
        "--tls-cert=" + file("server.pem"),
        "--tls-key=" + file("server.key"),
        "--tls-client-ca=" + file("ca.pem"),
        "--access-file=" + file("access.txt"));
  }

  /** Outbound calls of trainer {@code r}: the CA and its token. */
  List<String> trainerClientFlags(int r) {
    return List.of("--tls-ca=" + file("ca.pem"), "--token-file=" + file("trainer-" + r + ".token"));
  }

  /** Outbound calls of the checkpoint service: the CA and its client certificate (mTLS). */
  List<String> checkpointClientFlags() {
    return List.of(
        "--tls-ca=" + file("ca.pem"),
        "--tls-client-cert=" + file("checkpoint-client.pem"),
        "--tls-client-key=" + file("checkpoint-client.key"));
  }

  /** The launcher's own credentials: TLS to the demo CA and its token. */
  ChannelCredentials launcherCredentials() throws IOException, GeneralSecurityException {
    return CompositeChannelCredentials.create(
        TlsFiles.client(file("ca.pem"), null, null, 30_000), BearerToken.of(demoToken, false));
  }
}
