package dev.roadless.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.checkpoint.testing.TrainedCluster;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.security.AccessControl;
import dev.roadless.common.security.Audit;
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.checkpoint.v1.DeleteCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.testing.RoleMatrix;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ServerBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checkpoint service and the optimizer, both on TLS with access files, the checkpoint service
 * calling the optimizer with its own identity (a client certificate, CN checkpoint-service):
 * anonymous and wrong-run callers are refused and nothing changes; a team's operator works on its
 * own runs and checkpoints; listings show only granted runs.
 */
class CheckpointAuthorizationTest {
  @TempDir static Path dir;
  private static final List<AutoCloseable> CLOSE = new ArrayList<>();
  private static final List<ManagedChannel> CHANNELS = new ArrayList<>();
  private static OptimizerServer optimizer;
  private static CheckpointServer checkpoint;
  private static final Map<String, String> TOKENS = RoleMatrix.newTokens();
  private static OptimizerClient admin;

  @BeforeAll
  static void start() throws Exception {
    Duration day = Duration.ofDays(1);
    DevPki ca = DevPki.create("ckpt-test-ca", day);
    ca.writeCa(dir.resolve("ca.pem"));
    ca.issue("server", day, dir.resolve("server.pem"), dir.resolve("server.key"));
    ca.issue("checkpoint-service", day, dir.resolve("cp.pem"), dir.resolve("cp.key"));
    Files.writeString(
        dir.resolve("access.txt"),
        RoleMatrix.accessLines(TOKENS, RoleMatrix.GRANTS) + "checkpoint-service - *=operator\n");
    AccessControl access = AccessControl.fromFile(dir.resolve("access.txt"), 1000);
    CLOSE.add(access);

    ServerBuilder<?> ob = Grpc.newServerBuilderForPort(0, serverCredentials());
    ob.intercept(Authorization.builder(access, Audit.newIsolated()).build());
    optimizer = OptimizerServer.builder(ob).build().start();

    ChannelCredentials asCheckpointService =
        TlsFiles.client(dir.resolve("ca.pem"), dir.resolve("cp.pem"), dir.resolve("cp.key"), 1000);
    ManagedChannel up = channel(optimizer.port(), asCheckpointService);
    Checkpoints checkpoints =
        new Checkpoints(
            new OptimizerClient(up, TrainedCluster.fastFailing()),
            "optimizer",
            new OptimizerStateClient(up, TrainedCluster.fastFailing()),
            List.of(),
            Executors.newSingleThreadExecutor(),
            new CheckpointStore(Files.createDirectory(dir.resolve("checkpoints"))),
            new Retention(0, Retention.BestMetric.NONE),
            Clock.systemUTC());
    ServerBuilder<?> cb = Grpc.newServerBuilderForPort(0, serverCredentials());
    cb.intercept(
        CheckpointRuns.resolvers(
                Authorization.builder(access, Audit.newIsolated()),
                new CheckpointStore(dir.resolve("checkpoints")))
            .build());
    checkpoint = new CheckpointServer(cb, checkpoints, ServiceMetrics.newIsolated()).start();

    admin =
        new OptimizerClient(channel(optimizer.port(), as("admin")), TrainedCluster.fastFailing());
    for (String run : new String[] {"team-a-1", "team-b-1"}) {
      admin.createRun(run, OptimizerHarness.spec());
      admin.uploadInitialValues(
          run, OptimizerHarness.NAMES, new float[][] {new float[128], new float[16]});
    }
    stub("admin")
        .saveStateCheckpoint(
            SaveStateCheckpointRequest.newBuilder()
                .setRunId("team-b-1")
                .setName("b-state")
                .build());
  }

  @AfterAll
  static void stop() throws Exception {
    CHANNELS.forEach(ManagedChannel::shutdownNow);
    checkpoint.shutdown(0);
    optimizer.shutdown(0);
    for (AutoCloseable c : CLOSE) {
      c.close();
    }
  }

  @Test
  void anonymous_everyCallUnauthenticated() throws Exception {
    var anon =
        CheckpointServiceGrpc.newBlockingStub(
            channel(checkpoint.port(), TlsFiles.client(dir.resolve("ca.pem"), null, null, 1000)));
    RoleMatrix.assertReason(
        "UNAUTHENTICATED", () -> anon.listCheckpoints(ListCheckpointsRequest.getDefaultInstance()));
    RoleMatrix.assertReason(
        "UNAUTHENTICATED",
        () ->
            anon.deleteCheckpoint(DeleteCheckpointRequest.newBuilder().setName("b-state").build()));
    assertTrue(names("admin").contains("b-state"));
  }

  @Test
  void otherTeamsCheckpoints_refusedAndUnchanged() {
    var teamA = stub("operator");
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            teamA.deleteCheckpoint(
                DeleteCheckpointRequest.newBuilder().setName("b-state").build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () -> teamA.getCheckpoint(GetCheckpointRequest.newBuilder().setName("b-state").build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            teamA
                .downloadCheckpoint(
                    DownloadCheckpointRequest.newBuilder().setName("b-state").build())
                .forEachRemaining(r -> {}));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            teamA.restoreState(
                RestoreStateRequest.newBuilder()
                    .setCheckpoint("b-state")
                    .setRunId("team-a-stolen")
                    .build()));
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            teamA.saveStateCheckpoint(
                SaveStateCheckpointRequest.newBuilder().setRunId("team-b-1").setName("x").build()));
    // A name that does not exist says no more than one of another team's.
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () -> teamA.getCheckpoint(GetCheckpointRequest.newBuilder().setName("nothing").build()));
    assertTrue(names("admin").contains("b-state"));
    assertEquals(false, names("admin").contains("x"));
    StatusRuntimeException absent =
        assertThrows(StatusRuntimeException.class, () -> admin.status("team-a-stolen"));
    assertEquals(Status.Code.NOT_FOUND, absent.getStatus().getCode());
  }

  @Test
  void ownTeam_operatorSavesAndRestores_readerOnlyReads_listingsFiltered() {
    var teamA = stub("operator");
    teamA.saveStateCheckpoint(
        SaveStateCheckpointRequest.newBuilder().setRunId("team-a-1").setName("a-state").build());
    teamA.restoreState(
        RestoreStateRequest.newBuilder().setCheckpoint("a-state").setRunId("team-a-2").build());
    assertEquals(0, admin.status("team-a-2").getStep());
    assertEquals(List.of("a-state"), names("operator"));
    var reader = stub("reader");
    assertEquals(
        "team-a-1",
        reader
            .getCheckpoint(GetCheckpointRequest.newBuilder().setName("a-state").build())
            .getCheckpoint()
            .getRunId());
    RoleMatrix.assertReason(
        "PERMISSION_DENIED",
        () ->
            reader.deleteCheckpoint(
                DeleteCheckpointRequest.newBuilder().setName("a-state").build()));
    assertTrue(names("admin").containsAll(List.of("a-state", "b-state")));
  }

  private static List<String> names(String caller) {
    return stub(caller)
        .listCheckpoints(ListCheckpointsRequest.getDefaultInstance())
        .getCheckpointsList()
        .stream()
        .map(CheckpointInfo::getName)
        .sorted()
        .toList();
  }

  private static CheckpointServiceGrpc.CheckpointServiceBlockingStub stub(String caller) {
    try {
      return CheckpointServiceGrpc.newBlockingStub(channel(checkpoint.port(), as(caller)));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static ChannelCredentials as(String caller) throws Exception {
    return RoleMatrix.as(
        TlsFiles.client(dir.resolve("ca.pem"), null, null, 1000), TOKENS.get(caller));
  }

  private static io.grpc.ServerCredentials serverCredentials() throws Exception {
    return TlsFiles.server(
        dir.resolve("server.pem"),
        dir.resolve("server.key"),
        dir.resolve("ca.pem"),
        TlsFiles.ClientAuth.OPTIONAL,
        1000);
  }

  private static ManagedChannel channel(int port, ChannelCredentials credentials) {
    ManagedChannel c = Grpc.newChannelBuilderForAddress("localhost", port, credentials).build();
    CHANNELS.add(c);
    return c;
  }
}
