package dev.roadless.optimizer.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import dev.roadless.common.error.Errors;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Mutual TLS refusals, certificate identities, and rotation of certificates and tokens. */
class TlsRotationTest {
  private static final long WAIT_NANOS = 20_000_000_000L;

  @Test
  void requiredClientCertificate_clientWithoutOne_refused(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.REQUIRE)) {
      Status.Code code = call(s.channel("ca.pem", null, s.tokens.get("admin")));
      assertNotEquals(Status.Code.OK, code);
      assertEquals(Status.Code.OK, call(s.channel("ca.pem", "client", null)), "with a cert");
    }
  }

  @Test
  void clientCertificateFromAnotherCa_refused(@TempDir Path dir) throws Exception {
    for (TlsFiles.ClientAuth auth : TlsFiles.ClientAuth.values()) {
      Path d = Files.createDirectory(dir.resolve(auth.name()));
      try (SecureSetup s = new SecureSetup(d, auth)) {
        assertNotEquals(Status.Code.OK, call(s.channel("ca.pem", "forged", null)), auth.name());
      }
    }
  }

  @Test
  void clientCertificate_identityIsItsCommonName(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL)) {
      ManagedChannel cert = s.channel("ca.pem", "client", null);
      var stub = OptimizerServiceGrpc.newBlockingStub(cert);
      assertEquals(0, stub.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsCount());
      StatusRuntimeException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              StatusRuntimeException.class,
              () -> stub.deleteRun(DeleteRunRequest.newBuilder().setRunId("team-b-9").build()));
      assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
      ErrorInfo info = Errors.errorInfo(e);
      assertEquals("cert-operator", info.getMetadataOrThrow("identity"));
      assertEquals(1.0, s.audit.deniedCount("DeleteRun", "PERMISSION_DENIED"));
      cert.shutdownNow();
    }
  }

  @Test
  void serverNotSignedByTheTrustedCa_refusedByTheClient(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL)) {
      assertEquals(Status.Code.UNAVAILABLE, call(s.channel("other-ca.pem", null, null)));
    }
  }

  @Test
  void rotatedServerCertificate_takesEffectWithoutRestart(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL)) {
      String admin = s.tokens.get("admin");
      assertEquals(Status.Code.OK, call(s.channel("ca.pem", null, admin)));
      DevPki next = DevPki.create("next-ca", SecureSetup.DAY);
      next.writeCa(dir.resolve("next-ca.pem"));
      assertNotEquals(Status.Code.OK, call(s.channel("next-ca.pem", null, admin)));

      next.issue("server", SecureSetup.DAY, dir.resolve("server.pem"), dir.resolve("server.key"));
      FileTime later = FileTime.from(Instant.now().plusSeconds(5));
      Files.setLastModifiedTime(dir.resolve("server.key"), later);
      Files.setLastModifiedTime(dir.resolve("server.pem"), later);

      awaitCode(Status.Code.OK, () -> call(s.channel("next-ca.pem", null, admin)));
      assertNotEquals(Status.Code.OK, call(s.channel("ca.pem", null, admin)), "old CA");
    }
  }

  @Test
  void rotatedTokenFile_takesEffectWithoutRestart(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL)) {
      String old = s.tokens.get("admin");
      assertEquals(Status.Code.OK, call(s.channel("ca.pem", null, old)));
      Map<String, String> rotated = new HashMap<>(s.tokens);
      String fresh = DevPki.newToken();
      rotated.put("admin", fresh);
      s.writeAccess(rotated);

      awaitCode(Status.Code.OK, () -> call(s.channel("ca.pem", null, fresh)));
      assertEquals(Status.Code.UNAUTHENTICATED, call(s.channel("ca.pem", null, old)));
      assertTrue(s.audit.deniedCount("ListRuns", "UNAUTHENTICATED") >= 1);
    }
  }

  /** Retries on fresh channels until the reload has happened (polled files: nothing to latch). */
  private static void awaitCode(Status.Code expected, Callable<Status.Code> probe)
      throws Exception {
    long deadline = System.nanoTime() + WAIT_NANOS;
    Status.Code last = probe.call();
    while (last != expected && System.nanoTime() < deadline) {
      Thread.sleep(50);
      last = probe.call();
    }
    assertEquals(expected, last);
  }

  /** ListRuns on the channel (then shut down): OK or the refusal's code. */
  private static Status.Code call(ManagedChannel channel) {
    try {
      OptimizerServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(10, java.util.concurrent.TimeUnit.SECONDS)
          .listRuns(ListRunsRequest.getDefaultInstance());
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    } finally {
      channel.shutdownNow();
    }
  }
}
