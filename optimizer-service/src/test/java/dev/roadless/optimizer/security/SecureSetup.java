package dev.roadless.optimizer.security;

import dev.roadless.common.security.AccessControl;
import dev.roadless.common.security.AccessFile;
import dev.roadless.common.security.Audit;
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.BearerToken;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.server.OptimizerServer;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A real optimizer server on loopback with TLS (optional or required client certificates from the
 * test CA), an access file with one token per role on the runs {@code team-a-*}, an operator of
 * {@code team-b-*} (the wrong run), and an mTLS identity; plus a second CA whose certificates must
 * be refused. Certificates and the access file are polled every 100 ms.
 */
final class SecureSetup implements AutoCloseable {
  static final Duration DAY = Duration.ofDays(1);
  static final long RELOAD_MILLIS = 100;

  final Path dir;
  final DevPki ca;
  final Map<String, String> tokens = new LinkedHashMap<>();
  final AccessControl access;
  final Audit audit = Audit.newIsolated();
  final OptimizerServer server;

  SecureSetup(Path dir, TlsFiles.ClientAuth clientAuth) throws Exception {
    this.dir = dir;
    ca = DevPki.create("test-ca", DAY);
    ca.writeCa(dir.resolve("ca.pem"));
    ca.issue("server", DAY, dir.resolve("server.pem"), dir.resolve("server.key"));
    ca.issue("cert-operator", DAY, dir.resolve("client.pem"), dir.resolve("client.key"));
    DevPki other = DevPki.create("other-ca", DAY);
    other.writeCa(dir.resolve("other-ca.pem"));
    other.issue("cert-operator", DAY, dir.resolve("forged.pem"), dir.resolve("forged.key"));
    for (String role : new String[] {"trainer", "reader", "operator", "admin", "wrong-run"}) {
      tokens.put(role, DevPki.newToken());
    }
    writeAccess(tokens);
    access = AccessControl.fromFile(dir.resolve("access.txt"), RELOAD_MILLIS);
    NettyServerBuilder builder =
        NettyServerBuilder.forPort(
            0,
            TlsFiles.server(
                dir.resolve("server.pem"),
                dir.resolve("server.key"),
                dir.resolve("ca.pem"),
                clientAuth,
                RELOAD_MILLIS));
    builder.intercept(Authorization.builder(access, audit).build());
    server = OptimizerServer.builder(builder).threads(1).build().start();
  }

  void writeAccess(Map<String, String> t) throws Exception {
    String text =
        "# test grants\n"
            + line("trainer", t, "team-a-*=trainer")
            + line("reader", t, "team-a-*=reader")
            + line("operator", t, "team-a-*=operator")
            + line("admin", t, "*=admin")
            + line("wrong-run", t, "team-b-*=operator team-b-*=trainer")
            + "cert-operator - team-a-*=operator\n";
    Path tmp = dir.resolve("access.tmp");
    Files.writeString(tmp, text);
    Files.move(tmp, dir.resolve("access.txt"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static String line(String role, Map<String, String> t, String grants) {
    return role + " " + AccessFile.sha256Hex(t.get(role)) + " " + grants + "\n";
  }

  String target() {
    return "localhost:" + server.port();
  }

  /** A channel trusting {@code caFile}, with an optional client certificate and token. */
  ManagedChannel channel(String caFile, String certName, String token) throws Exception {
    ChannelCredentials tls =
        TlsFiles.client(
            dir.resolve(caFile),
            certName == null ? null : dir.resolve(certName + ".pem"),
            certName == null ? null : dir.resolve(certName + ".key"),
            RELOAD_MILLIS);
    ChannelCredentials c =
        token == null ? tls : CompositeChannelCredentials.create(tls, BearerToken.of(token, false));
    return Channels.secure(target(), c).build();
  }

  /** A channel of the role's token (null: anonymous), trusting the test CA. */
  ManagedChannel as(String role) throws Exception {
    return channel("ca.pem", null, role == null ? null : tokens.get(role));
  }

  @Override
  public void close() throws Exception {
    server.shutdown(0);
    access.close();
  }
}
