package dev.roadless.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
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
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every role against every RPC of roadless.checkpoint.v1 on one real TLS checkpoint service (and
 * its TLS optimizer, called with the service's own client certificate): allowed (whatever the call
 * then answers), or refused with the right status and ErrorInfo reason, and the checkpoints and
 * runs exactly as they were. Each case works on a fresh run and state checkpoint of team-a. The
 * expectations are written out here, apart from the policy table they check.
 */
class CheckpointAuthorizationMatrixTest {
  private static final String ANONYMOUS = RoleMatrix.ANONYMOUS;
  private static final List<String> CALLERS = RoleMatrix.CALLERS;
  private static final Set<String> VIEW = Set.of("reader", "operator", "admin");
  private static final Set<String> OPERATE = Set.of("operator", "admin");

  enum Rpc {
    SAVE_CHECKPOINT(OPERATE),
    SAVE_STATE_CHECKPOINT(OPERATE),
    RESTORE_STATE(OPERATE),
    LIST_CHECKPOINTS(Set.of("trainer", "reader", "operator", "admin", "wrong-run")), // filtered
    LIST_CHECKPOINTS_OF_RUN(VIEW),
    GET_CHECKPOINT(VIEW),
    DOWNLOAD_CHECKPOINT(VIEW),
    DELETE_CHECKPOINT(OPERATE);

    final Set<String> allowed;

    Rpc(Set<String> allowed) {
      this.allowed = allowed;
    }
  }

  @TempDir static Path dir;
  private static final List<AutoCloseable> CLOSE = new ArrayList<>();
  private static final Map<String, String> TOKENS = new LinkedHashMap<>();
  private static final Map<String, ManagedChannel> CHANNELS = new HashMap<>();
  private static final List<ManagedChannel> OTHER = new ArrayList<>();
  private static final AtomicInteger RUNS = new AtomicInteger();
  private static OptimizerServer optimizer;
  private static CheckpointServer checkpoint;
  private static OptimizerClient admin;

  @BeforeAll
  static void start() throws Exception {
    Duration day = Duration.ofDays(1);
    DevPki ca = DevPki.create("ckpt-matrix-ca", day);
    ca.writeCa(dir.resolve("ca.pem"));
    ca.issue("server", day, dir.resolve("server.pem"), dir.resolve("server.key"));
    ca.issue("checkpoint-service", day, dir.resolve("cp.pem"), dir.resolve("cp.key"));
    TOKENS.putAll(RoleMatrix.newTokens());
    Files.writeString(
        dir.resolve("access.txt"),
        "checkpoint-service - *=operator\n" + RoleMatrix.accessLines(TOKENS, RoleMatrix.GRANTS));
    AccessControl access = AccessControl.fromFile(dir.resolve("access.txt"), 1000);
    CLOSE.add(access);
    ServerBuilder<?> ob = Grpc.newServerBuilderForPort(0, serverCredentials());
    ob.intercept(Authorization.builder(access, Audit.newIsolated()).build());
    optimizer = OptimizerServer.builder(ob).build().start();
    ChannelCredentials asCheckpointService =
        TlsFiles.client(dir.resolve("ca.pem"), dir.resolve("cp.pem"), dir.resolve("cp.key"), 1000);
    ManagedChannel up = channel(optimizer.port(), asCheckpointService);
    OTHER.add(up);
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
    ChannelCredentials tls = TlsFiles.client(dir.resolve("ca.pem"), null, null, 1000);
    for (String caller : CALLERS) {
      String token = TOKENS.get(caller);
      CHANNELS.put(caller, channel(checkpoint.port(), RoleMatrix.as(tls, token)));
    }
    ManagedChannel toOptimizer = channel(optimizer.port(), RoleMatrix.as(tls, TOKENS.get("admin")));
    OTHER.add(toOptimizer);
    admin = new OptimizerClient(toOptimizer, TrainedCluster.fastFailing());
  }

  @AfterAll
  static void stop() throws Exception {
    CHANNELS.values().forEach(ManagedChannel::shutdownNow);
    OTHER.forEach(ManagedChannel::shutdownNow);
    checkpoint.shutdown(0);
    optimizer.shutdown(0);
    for (AutoCloseable c : CLOSE) {
      c.close();
    }
  }

  static Stream<Arguments> cases() {
    return RoleMatrix.cases(Rpc.values());
  }

  @ParameterizedTest(name = "{0} as {1}")
  @MethodSource("cases")
  void rpc_asCaller_allowedOrRefusedWithReasonAndNothingChanged(Rpc rpc, String caller) {
    String run = "team-a-" + RUNS.incrementAndGet();
    admin.createRun(run, OptimizerHarness.spec());
    admin.uploadInitialValues(
        run, OptimizerHarness.NAMES, new float[][] {new float[128], new float[16]});
    var asAdmin = CheckpointServiceGrpc.newBlockingStub(CHANNELS.get("admin"));
    asAdmin.saveStateCheckpoint(
        SaveStateCheckpointRequest.newBuilder().setRunId(run).setName(run + "-ck").build());
    String before = state(run);
    List<String> listed = new ArrayList<>();
    Throwable failure = invoke(rpc, CHANNELS.get(caller), run, listed);
    if (rpc.allowed.contains(caller)) {
      RoleMatrix.assertNotRefused(failure);
      if (rpc == Rpc.LIST_CHECKPOINTS) {
        assertEquals(
            !caller.equals("trainer") && !caller.equals("wrong-run"),
            listed.contains(run + "-ck"),
            caller + " listed " + listed);
      }
      return;
    }
    RoleMatrix.assertRefused(failure, caller, run);
    assertEquals(before, state(run), "a refused call changed something");
  }

  /** What an admin sees: the checkpoints, the run and the restore target. */
  private static String state(String run) {
    List<String> names =
        CheckpointServiceGrpc.newBlockingStub(CHANNELS.get("admin"))
            .listCheckpoints(ListCheckpointsRequest.getDefaultInstance())
            .getCheckpointsList()
            .stream()
            .map(CheckpointInfo::getName)
            .sorted()
            .toList();
    return names + " " + status(run) + " " + status(run + "-restored");
  }

  private static String status(String run) {
    try {
      return admin.status(run).toString();
    } catch (StatusRuntimeException e) {
      return Status.fromThrowable(e).getCode().name();
    }
  }

  private static Throwable invoke(Rpc rpc, ManagedChannel channel, String run, List<String> out) {
    var stub = CheckpointServiceGrpc.newBlockingStub(channel);
    String name = run + "-ck";
    try {
      switch (rpc) {
        case SAVE_CHECKPOINT ->
            stub.saveCheckpoint(
                SaveCheckpointRequest.newBuilder().setRunId(run).setName(run + "-eval").build());
        case SAVE_STATE_CHECKPOINT ->
            stub.saveStateCheckpoint(
                SaveStateCheckpointRequest.newBuilder().setRunId(run).setName(run + "-2").build());
        case RESTORE_STATE ->
            stub.restoreState(
                RestoreStateRequest.newBuilder()
                    .setCheckpoint(name)
                    .setRunId(run + "-restored")
                    .build());
        case LIST_CHECKPOINTS ->
            stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance())
                .getCheckpointsList()
                .forEach(c -> out.add(c.getName()));
        case LIST_CHECKPOINTS_OF_RUN ->
            stub.listCheckpoints(ListCheckpointsRequest.newBuilder().setRunId(run).build());
        case GET_CHECKPOINT ->
            stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName(name).build());
        case DOWNLOAD_CHECKPOINT ->
            stub.downloadCheckpoint(DownloadCheckpointRequest.newBuilder().setName(name).build())
                .forEachRemaining(r -> {});
        case DELETE_CHECKPOINT ->
            stub.deleteCheckpoint(DeleteCheckpointRequest.newBuilder().setName(name).build());
      }
      return null;
    } catch (StatusRuntimeException e) {
      return e;
    }
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
    return Grpc.newChannelBuilderForAddress("localhost", port, credentials).build();
  }
}
