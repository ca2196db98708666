package dev.roadless.optimizer.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.security.TlsFiles;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetRunStatusRequest;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.RollbackRunRequest;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersRequest;
import dev.roadless.proto.optimizer.v1.UploadHeader;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesRequest;
import dev.roadless.testing.RoleMatrix;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every role against every RPC of roadless.optimizer.v1 on a real TLS server on loopback: allowed
 * (whatever the call itself then answers), or refused with the right status and ErrorInfo reason
 * and the run exactly as it was. The expectations are written out here, apart from the policy table
 * they check.
 */
class OptimizerAuthorizationTest {
  private static final String ANONYMOUS = RoleMatrix.ANONYMOUS;
  private static final List<String> CALLERS = RoleMatrix.CALLERS;

  enum Rpc {
    CREATE_RUN("operator", "admin"),
    UPLOAD_INITIAL_VALUES("trainer", "operator", "admin"),
    PUSH_GRADIENTS("trainer", "admin"),
    TRAIN("trainer", "admin"),
    ATTACH_SHARED_MEMORY("trainer", "admin"),
    GET_PARAMETERS_X("trainer", "reader", "operator", "admin"),
    GET_PARAMETERS_Y("trainer", "admin"),
    GET_RUN_STATUS("trainer", "reader", "operator", "admin"),
    LIST_RUNS("trainer", "reader", "operator", "admin", "wrong-run"), // filtered: checked below
    UPDATE_HYPERPARAMETERS("operator", "admin"),
    EXPORT_STATE("operator", "admin"),
    IMPORT_STATE("operator", "admin"),
    DELETE_RUN("operator", "admin"),
    ROLLBACK_RUN("operator", "admin");

    final Set<String> allowed;

    Rpc(String... allowed) {
      this.allowed = Set.of(allowed);
    }
  }

  @TempDir static Path dir;
  private static SecureSetup setup;
  private static final Map<String, ManagedChannel> CHANNELS = new HashMap<>();
  private static OptimizerClient admin;
  private static final AtomicInteger RUNS = new AtomicInteger();

  @BeforeAll
  static void start() throws Exception {
    setup = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL);
    for (String caller : CALLERS) {
      CHANNELS.put(caller, setup.as(caller.equals(ANONYMOUS) ? null : caller));
    }
    admin = client("admin");
    admin.createRun("team-b-1", spec());
    admin.uploadInitialValues("team-b-1", List.of("w"), new float[][] {{1, 2, 3, 4}});
  }

  @AfterAll
  static void stop() throws Exception {
    CHANNELS.values().forEach(ManagedChannel::shutdownNow);
    setup.close();
  }

  static Stream<Arguments> cases() {
    return RoleMatrix.cases(Rpc.values());
  }

  @ParameterizedTest(name = "{0} as {1}")
  @MethodSource("cases")
  void rpc_asCaller_allowedOrRefusedWithReasonAndNothingChanged(Rpc rpc, String caller)
      throws Exception {
    String run = "team-a-" + RUNS.incrementAndGet();
    if (rpc != Rpc.CREATE_RUN && rpc != Rpc.IMPORT_STATE) {
      admin.createRun(run, spec());
      if (rpc != Rpc.UPLOAD_INITIAL_VALUES) {
        admin.uploadInitialValues(run, List.of("w"), new float[][] {{1, 2, 3, 4}});
      }
    }
    String before = state(run);
    Throwable failure = invoke(rpc, CHANNELS.get(caller), run);
    if (rpc.allowed.contains(caller)) {
      RoleMatrix.assertNotRefused(failure);
      return;
    }
    RoleMatrix.assertRefused(failure, caller, run);
    assertEquals(before, state(run), "a refused call changed the run");
  }

  @ParameterizedTest(name = "ListRuns as {0}")
  @MethodSource("callers")
  void listRuns_nonAdmin_seesOnlyGrantedRuns(String caller) throws Exception {
    admin.createRun("team-a-listed", spec());
    List<String> runs =
        OptimizerServiceGrpc.newBlockingStub(CHANNELS.get(caller))
            .listRuns(ListRunsRequest.getDefaultInstance())
            .getRunIdsList();
    if (caller.equals("admin")) {
      assertTrue(runs.containsAll(List.of("team-a-listed", "team-b-1")), runs.toString());
    } else if (caller.equals("wrong-run")) {
      assertEquals(List.of("team-b-1"), runs);
    } else {
      assertTrue(runs.contains("team-a-listed"), runs.toString());
      assertFalse(runs.contains("team-b-1"), runs.toString());
    }
  }

  static Stream<String> callers() {
    return CALLERS.stream().filter(c -> !c.equals(ANONYMOUS));
  }

  /** The run as an admin sees it: status and x, or "absent". */
  private static String state(String run) {
    try {
      return admin.status(run).toString()
          + Arrays.deepToString(admin.parameters(run, Sequence.SEQUENCE_EVAL, 0).values());
    } catch (StatusRuntimeException e) {
      return Status.fromThrowable(e).getCode().name();
    }
  }

  private static Throwable invoke(Rpc rpc, ManagedChannel channel, String run) throws Exception {
    var blocking = OptimizerServiceGrpc.newBlockingStub(channel);
    var async = OptimizerServiceGrpc.newStub(channel);
    try {
      switch (rpc) {
        case CREATE_RUN -> client(channel).createRun(run, spec());
        case UPLOAD_INITIAL_VALUES ->
            stream(
                async::uploadInitialValues,
                UploadInitialValuesRequest.newBuilder()
                    .setHeader(UploadHeader.newBuilder().setRunId(run))
                    .build(),
                UploadInitialValuesRequest.newBuilder()
                    .setCommit(StreamCommit.newBuilder().setTotalElements(4))
                    .build());
        case PUSH_GRADIENTS ->
            stream(
                async::pushGradients,
                PushGradientsRequest.newBuilder().setHeader(header(run)).build(),
                PushGradientsRequest.newBuilder()
                    .setCommit(StreamCommit.newBuilder().setTotalElements(4))
                    .build());
        case TRAIN ->
            stream(
                async::train,
                TrainRequest.newBuilder().setHeader(header(run)).build(),
                TrainRequest.newBuilder()
                    .setCommit(StreamCommit.newBuilder().setTotalElements(4))
                    .build());
        case ATTACH_SHARED_MEMORY ->
            blocking.attachSharedMemory(
                AttachSharedMemoryRequest.newBuilder().setRunId(run).build());
        case GET_PARAMETERS_X, GET_PARAMETERS_Y ->
            blocking
                .getParameters(
                    GetParametersRequest.newBuilder()
                        .setRunId(run)
                        .setSequence(
                            rpc == Rpc.GET_PARAMETERS_X
                                ? Sequence.SEQUENCE_EVAL
                                : Sequence.SEQUENCE_TRAIN)
                        .build())
                .forEachRemaining(r -> {});
        case GET_RUN_STATUS ->
            blocking.getRunStatus(GetRunStatusRequest.newBuilder().setRunId(run).build());
        case LIST_RUNS -> blocking.listRuns(ListRunsRequest.getDefaultInstance());
        case UPDATE_HYPERPARAMETERS ->
            blocking.updateHyperparameters(
                UpdateHyperparametersRequest.newBuilder()
                    .setRunId(run)
                    .setGroup("all")
                    .setHyperparameters(Hyperparameters.newBuilder().setLr(1e30))
                    .build());
        case EXPORT_STATE ->
            blocking
                .exportState(ExportStateRequest.newBuilder().setRunId(run).build())
                .forEachRemaining(r -> {});
        case IMPORT_STATE ->
            stream(
                async::importState,
                ImportStateRequest.newBuilder()
                    .setHeader(StateHeader.newBuilder().setRunId(run).setSpec(spec()))
                    .build(),
                ImportStateRequest.newBuilder()
                    .setCommit(StreamCommit.getDefaultInstance())
                    .build());
        case DELETE_RUN -> blocking.deleteRun(DeleteRunRequest.newBuilder().setRunId(run).build());
        case ROLLBACK_RUN ->
            blocking.rollbackRun(RollbackRunRequest.newBuilder().setRunId(run).build());
      }
      return null;
    } catch (StatusRuntimeException e) {
      return e;
    }
  }

  private static GradientHeader header(String run) {
    return GradientHeader.newBuilder()
        .setRunId(run)
        .setReplica(0)
        .setStep(0)
        .setDtype(dev.roadless.proto.common.v1.DataType.DATA_TYPE_FLOAT32)
        .build();
  }

  /** Sends the messages on a client (or bidi) stream and waits for its end. */
  @SafeVarargs
  private static <Q, R> void stream(
      java.util.function.Function<StreamObserver<R>, StreamObserver<Q>> open, Q... messages)
      throws Exception {
    CompletableFuture<Void> done = new CompletableFuture<>();
    StreamObserver<Q> out =
        open.apply(
            new StreamObserver<>() {
              @Override
              public void onNext(R value) {}

              @Override
              public void onError(Throwable t) {
                done.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                done.complete(null);
              }
            });
    for (Q m : messages) {
      out.onNext(m);
    }
    out.onCompleted();
    try {
      done.get(20, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof StatusRuntimeException sre) {
        throw sre;
      }
      throw e;
    }
  }

  private static OptimizerClient client(String caller) {
    return client(CHANNELS.get(caller));
  }

  private static OptimizerClient client(ManagedChannel channel) {
    return new OptimizerClient(channel, ClientOptions.defaults().withMaxAttempts(1));
  }

  /** SGD-SF over one [4] tensor, one group "all", one SYNC replica. */
  static RunSpec spec() {
    return RunSpec.newBuilder()
        .addTensors(TensorDescriptor.newBuilder().setName("w").addShape(4))
        .addParameterGroups(
            ParameterGroup.newBuilder()
                .setName("all")
                .addTensorNames("w")
                .setHyperparameters(Hyperparameters.newBuilder().setLr(0.1).setBeta(0.9)))
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_SGD)
        .setReplicas(1)
        .setMode(StepMode.STEP_MODE_SYNC)
        .build();
  }
}
