package dev.roadless.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.security.AccessControl;
import dev.roadless.common.security.Audit;
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.StopRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.testing.RoleMatrix;
import dev.roadless.trainer.service.Trainer;
import dev.roadless.trainer.service.TrainerServer;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ServerBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A trainer's control API on TLS with an access file: anonymous callers and callers of another
 * team's run are refused and the trainer stays as it was; an idle trainer's status is for admins.
 */
class TrainerAuthorizationTest {
  @TempDir static Path dir;
  private static final List<ManagedChannel> CHANNELS = new ArrayList<>();
  private static final Map<String, String> TOKENS = RoleMatrix.newTokens();
  private static TrainerServer server;
  private static AccessControl access;
  private static ManagedChannel nowhere;

  @BeforeAll
  static void start() throws Exception {
    Duration day = Duration.ofDays(1);
    DevPki ca = DevPki.create("trainer-test-ca", day);
    ca.writeCa(dir.resolve("ca.pem"));
    ca.issue("server", day, dir.resolve("server.pem"), dir.resolve("server.key"));
    Files.writeString(dir.resolve("access.txt"), RoleMatrix.accessLines(TOKENS, RoleMatrix.GRANTS));
    access = AccessControl.fromFile(dir.resolve("access.txt"), 1000);
    // The optimizer is never reached here: every call below is refused or needs no optimizer.
    nowhere = Grpc.newChannelBuilder("127.0.0.1:1", InsecureChannelCredentials.create()).build();
    Trainer trainer =
        new Trainer(new OptimizerClient(nowhere, ClientOptions.defaults().withMaxAttempts(1)));
    ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(
            0,
            TlsFiles.server(
                dir.resolve("server.pem"),
                dir.resolve("server.key"),
                null,
                TlsFiles.ClientAuth.OPTIONAL,
                1000));
    builder.intercept(
        TrainerRuns.resolvers(Authorization.builder(access, Audit.newIsolated()), trainer).build());
    server = new TrainerServer(builder, trainer, ServiceMetrics.newIsolated()).start();
  }

  @AfterAll
  static void stop() throws Exception {
    CHANNELS.forEach(ManagedChannel::shutdownNow);
    nowhere.shutdownNow();
    server.shutdown(0);
    access.close();
  }

  @Test
  void anonymous_unauthenticated() throws Exception {
    var anon = TrainerServiceGrpc.newBlockingStub(channel(null));
    RoleMatrix.assertReason(
        "UNAUTHENTICATED", () -> anon.getStatus(GetStatusRequest.getDefaultInstance()));
    RoleMatrix.assertReason(
        "UNAUTHENTICATED",
        () -> anon.start(StartRequest.newBuilder().setRunId("team-a-1").build()));
  }

  @Test
  void otherTeamsRun_refusedAndTrainerUnchanged() throws Exception {
    var teamA = TrainerServiceGrpc.newBlockingStub(channel(TOKENS.get("operator")));
    var admin = TrainerServiceGrpc.newBlockingStub(channel(TOKENS.get("admin")));
    String before = admin.getStatus(GetStatusRequest.getDefaultInstance()).toString();
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () -> teamA.start(StartRequest.newBuilder().setRunId("team-b-1").build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () -> teamA.evaluate(EvaluateRequest.newBuilder().setRunId("team-b-1").build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            teamA.computeBatchNormStatistics(
                ComputeBatchNormStatisticsRequest.newBuilder().setRunId("team-b-1").build()));
    // An idle trainer trains no run: its status and Stop are server-wide.
    RoleMatrix.assertReason(
        "PERMISSION_DENIED", () -> teamA.getStatus(GetStatusRequest.getDefaultInstance()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED", () -> teamA.stop(StopRequest.getDefaultInstance()));
    assertEquals(before, admin.getStatus(GetStatusRequest.getDefaultInstance()).toString());
  }

  @Test
  void ownRun_readerPassesAuthorization_andHearsTheTrainersOwnAnswer() throws Exception {
    var reader = TrainerServiceGrpc.newBlockingStub(channel(TOKENS.get("reader")));
    RoleMatrix.assertReason(
        "TRAINER_NOT_CONFIGURED",
        () -> reader.evaluate(EvaluateRequest.newBuilder().setRunId("team-a-1").build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () -> reader.start(StartRequest.newBuilder().setRunId("team-a-1").build()));
  }

  private static ManagedChannel channel(String token) throws Exception {
    ChannelCredentials tls = TlsFiles.client(dir.resolve("ca.pem"), null, null, 1000);
    ManagedChannel c =
        Grpc.newChannelBuilderForAddress("localhost", server.port(), RoleMatrix.as(tls, token))
            .build();
    CHANNELS.add(c);
    return c;
  }
}
