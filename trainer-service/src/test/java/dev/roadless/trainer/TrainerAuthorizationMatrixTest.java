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
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
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
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every role against every RPC of roadless.trainer.v1 on one real TLS trainer server on loopback
 * (an idle trainer whose optimizer is unreachable): allowed (whatever the trainer then answers), or
 * refused with the right status and ErrorInfo reason, and the trainer's status exactly as it was.
 * An idle trainer trains no run, so its GetStatus and Stop are server-wide: admin on {@code *}
 * only. The expectations are written out here, apart from the policy table they check.
 */
class TrainerAuthorizationMatrixTest {
  private static final String RUN = "team-a-1";
  private static final String ANONYMOUS = RoleMatrix.ANONYMOUS;
  private static final List<String> CALLERS = RoleMatrix.CALLERS;

  enum Rpc {
    START("operator", "admin"),
    STOP("admin"),
    GET_STATUS("admin"),
    COMPUTE_BATCH_NORM_STATISTICS("operator", "admin"),
    EVALUATE("reader", "operator", "admin");

    final Set<String> allowed;

    Rpc(String... allowed) {
      this.allowed = Set.of(allowed);
    }
  }

  @TempDir static Path dir;
  private static final Map<String, String> TOKENS = new LinkedHashMap<>();
  private static final Map<String, ManagedChannel> CHANNELS = new HashMap<>();
  private static TrainerServer server;
  private static AccessControl access;
  private static ManagedChannel nowhere;

  @BeforeAll
  static void start() throws Exception {
    Duration day = Duration.ofDays(1);
    DevPki ca = DevPki.create("trainer-matrix-ca", day);
    ca.writeCa(dir.resolve("ca.pem"));
    ca.issue("server", day, dir.resolve("server.pem"), dir.resolve("server.key"));
    TOKENS.putAll(RoleMatrix.newTokens());
    Files.writeString(
        dir.resolve("access.txt"),
        "# test grants\n" + RoleMatrix.accessLines(TOKENS, RoleMatrix.GRANTS));
    access = AccessControl.fromFile(dir.resolve("access.txt"), 1000);
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
    ChannelCredentials tls = TlsFiles.client(dir.resolve("ca.pem"), null, null, 1000);
    for (String caller : CALLERS) {
      String token = TOKENS.get(caller);
      CHANNELS.put(
          caller,
          Grpc.newChannelBuilderForAddress("localhost", server.port(), RoleMatrix.as(tls, token))
              .build());
    }
  }

  @AfterAll
  static void stop() throws Exception {
    CHANNELS.values().forEach(ManagedChannel::shutdownNow);
    nowhere.shutdownNow();
    server.shutdown(0);
    access.close();
  }

  static Stream<Arguments> cases() {
    return RoleMatrix.cases(Rpc.values());
  }

  @ParameterizedTest(name = "{0} as {1}")
  @MethodSource("cases")
  void rpc_asCaller_allowedOrRefusedWithReasonAndNothingChanged(Rpc rpc, String caller) {
    String before = state();
    Throwable failure = invoke(rpc, CHANNELS.get(caller));
    if (rpc.allowed.contains(caller)) {
      RoleMatrix.assertNotRefused(failure);
      return;
    }
    boolean serverWide = rpc == Rpc.STOP || rpc == Rpc.GET_STATUS;
    RoleMatrix.assertRefused(failure, caller, serverWide ? "" : RUN);
    assertEquals(before, state(), "a refused call changed the trainer");
  }

  /** The trainer's status as the admin sees it. */
  private static String state() {
    return TrainerServiceGrpc.newBlockingStub(CHANNELS.get("admin"))
        .getStatus(GetStatusRequest.getDefaultInstance())
        .toString();
  }

  private static Throwable invoke(Rpc rpc, ManagedChannel channel) {
    var stub = TrainerServiceGrpc.newBlockingStub(channel);
    try {
      switch (rpc) {
        case START -> stub.start(StartRequest.newBuilder().setRunId(RUN).build());
        case STOP -> stub.stop(StopRequest.getDefaultInstance());
        case GET_STATUS -> stub.getStatus(GetStatusRequest.getDefaultInstance());
        case COMPUTE_BATCH_NORM_STATISTICS ->
            stub.computeBatchNormStatistics(
                ComputeBatchNormStatisticsRequest.newBuilder()
                    .setRunId(RUN)
                    .setMode(BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE)
                    .build());
        case EVALUATE -> stub.evaluate(EvaluateRequest.newBuilder().setRunId(RUN).build());
      }
      return null;
    } catch (StatusRuntimeException e) {
      return e;
    }
  }
}
