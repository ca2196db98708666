package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static dev.roadless.optimizer.server.Harness.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.run.RunMemory;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Memory and streams are bounded per server and admitted before they are used: a run too large for
 * the budget, a push buffer, an export, a shared-memory segment are refused with RESOURCE_EXHAUSTED
 * and a reason, nothing half-made, and other runs go on; idle streams are closed; a failing
 * snapshot disk shows in status and health.
 */
class ResourceLimitsTest {
  private static final RunSpec SMALL = Harness.spec(2, StepMode.STEP_MODE_SYNC, 0);

  /** One [n] tensor, SGD-SF, SYNC with {@code replicas}. */
  private static RunSpec big(long n, int replicas) {
    RunSpec.Builder b = Harness.spec(replicas, StepMode.STEP_MODE_SYNC, 0).toBuilder();
    b.clearTensors().addTensors(TensorDescriptor.newBuilder().setName("w").addShape(n));
    b.getParameterGroupsBuilder(0).clearTensorNames().addTensorNames("w");
    return b.build();
  }

  private static long budgetOf(RunSpec spec) {
    return RunMemory.reservedBytes(SpecMapping.config(spec));
  }

  private static List<String> runs(Harness h) {
    return h.blocking.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsList();
  }

  @Test
  void createRun_overTheBudget_isRefusedAndOthersGoOn() throws Exception {
    long budget = budgetOf(SMALL) + budgetOf(big(100_000, 2)) + (1 << 16);
    try (Harness h = new Harness(null, 4 << 20, false, null, b -> b.memoryBudget(budget))) {
      h.newRun("small", SMALL);
      String small = h.fingerprint("small");
      h.client.createRun("fits", big(100_000, 2));
      var e =
          assertRefused(
              Status.Code.RESOURCE_EXHAUSTED,
              "MEMORY_BUDGET_EXCEEDED",
              () -> h.client.createRun("huge", big(100_000, 2)));
      assertTrue(e.getStatus().getDescription().contains("budget"), e.getStatus().toString());
      // 128 replicas of a SYNC run need 129 gradient sets at once: refused at CreateRun, not
      // stuck after the sixth push.
      assertRefused(
          Status.Code.RESOURCE_EXHAUSTED,
          "MEMORY_BUDGET_EXCEEDED",
          () -> h.client.createRun("wide", big(1_000, 128)));
      assertEquals(List.of("fits", "small"), runs(h));
      assertEquals(small, h.fingerprint("small"));
      // Deleting a run gives its memory back.
      h.blocking.deleteRun(DeleteRunRequest.newBuilder().setRunId("fits").build());
      h.client.createRun("huge", big(100_000, 2));
    }
  }

  @Test
  void pushBuffers_areTakenWhenDataArrives_notAtTheHeader() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("run", SMALL);
      long before = h.server.runs().budget().used();
      List<StreamObserver<PushGradientsRequest>> open = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        StreamObserver<PushGradientsRequest> s = h.async.pushGradients(new Ignore<>());
        s.onNext(RawStreams.header("run", 0, 0, DataType.DATA_TYPE_FLOAT32));
        open.add(s);
      }
      float[][] g = Harness.random(1);
      h.client.push("run", 1, 0, NAMES, g, DataType.DATA_TYPE_FLOAT32);
      Thread.sleep(200);
      // 50 header-only streams hold no gradient buffer beyond the run's reservation.
      assertEquals(before, h.server.runs().budget().used());
      open.forEach(StreamObserver::onCompleted);
    }
  }

  @Test
  void anUpload_isAssembledInTheRunsOwnGradientSet() throws Exception {
    RunSpec spec = big(100_000, 2);
    try (Harness h =
        new Harness(null, 4 << 20, false, null, b -> b.memoryBudget(budgetOf(spec) + 1000))) {
      h.client.createRun("run", spec);
      long run = h.server.runs().budget().used();
      // No room beyond the run's own admission, and none needed.
      float[] values = new float[100_000];
      assertTrue(h.client.uploadInitialValues("run", List.of("w"), new float[][] {values}));
      assertFalse(h.client.uploadInitialValues("run", List.of("w"), new float[][] {values}));
      assertEquals(run, h.server.runs().budget().used());
      assertTrue(h.client.status("run").getInitialized());
    }
  }

  @Test
  void anUploadWhilePushesHoldTheSets_isRefusedAndChangesNothing() throws Exception {
    RunSpec spec = big(100_000, 2);
    // The run and one more set (the fingerprint's copy of the parameters).
    long budget = budgetOf(spec) + 100_000 * 4 + 1000;
    try (Harness h = new Harness(null, 4 << 20, false, null, b -> b.memoryBudget(budget))) {
      h.client.createRun("run", spec);
      long run = h.server.runs().budget().used();
      float[] values = new float[100_000];
      java.util.Arrays.fill(values, 0.25f);
      assertTrue(h.client.uploadInitialValues("run", List.of("w"), new float[][] {values}));
      assertEquals(run, h.server.runs().budget().used());
      String before = h.fingerprint("run");
      // Two half-sent pushes hold the run's set and the spare room: a repeated upload now needs a
      // set of its own, which the budget refuses, and nothing changes.
      List<StreamObserver<PushGradientsRequest>> held = new ArrayList<>();
      for (int replica = 0; replica < 2; replica++) {
        StreamObserver<PushGradientsRequest> s = h.async.pushGradients(new Ignore<>());
        s.onNext(RawStreams.header("run", replica, 0, DataType.DATA_TYPE_FLOAT32));
        s.onNext(RawStreams.chunk("w", 0, 1f));
        held.add(s);
      }
      long end = System.nanoTime() + 10_000_000_000L;
      while (h.server.runs().budget().used() == run && System.nanoTime() < end) {
        Thread.sleep(5); // the second push's set is admitted when its chunk arrives
      }
      assertRefused(
          Status.Code.RESOURCE_EXHAUSTED,
          "MEMORY_BUDGET_EXCEEDED",
          () -> h.client.uploadInitialValues("run", List.of("w"), new float[][] {values}));
      held.forEach(s -> s.onError(new RuntimeException("client went away")));
      // Once the server has seen the cancels, the sets are free again and the identical upload is
      // the no-op it always was, in the run's own memory.
      end = System.nanoTime() + 10_000_000_000L;
      Boolean stored = null;
      while (stored == null) {
        try {
          stored = h.client.uploadInitialValues("run", List.of("w"), new float[][] {values});
        } catch (StatusRuntimeException e) {
          assertEquals("MEMORY_BUDGET_EXCEEDED", OptimizerClient.reason(e));
          assertTrue(System.nanoTime() < end, "the cancelled push's set never came back");
          Thread.sleep(20);
        }
      }
      assertFalse(stored);
      assertEquals(run, h.server.runs().budget().used());
      assertEquals(before, h.fingerprint("run"));
    }
  }

  @Test
  void pushBuffersBeyondTheBudget_areRefusedWithAReason() throws Exception {
    RunSpec spec = big(50_000, 2);
    // Room for the run and one spare gradient set: concurrent half-sent pushes beyond that fail.
    long budget = budgetOf(spec) + 50_000 * 4 + 1000;
    try (Harness h = new Harness(null, 4 << 20, false, null, b -> b.memoryBudget(budget))) {
      h.client.createRun("run", spec);
      h.client.uploadInitialValues("run", List.of("w"), new float[][] {new float[50_000]});
      List<CompletableFuture<PushGradientsResponse>> answers = new ArrayList<>();
      List<StreamObserver<PushGradientsRequest>> streams = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        CompletableFuture<PushGradientsResponse> answer = new CompletableFuture<>();
        StreamObserver<PushGradientsRequest> s = h.async.pushGradients(new Into<>(answer));
        s.onNext(RawStreams.header("run", 0, 0, DataType.DATA_TYPE_FLOAT32));
        s.onNext(RawStreams.chunk("w", 0, 1f));
        streams.add(s);
        answers.add(answer);
      }
      // The streams beyond the budget are answered as their first chunk arrives; the others stay
      // open, so wait (bounded) for the refusals rather than for every answer.
      long refused = 0;
      for (long end = System.nanoTime() + 20_000_000_000L;
          refused < 4 && System.nanoTime() < end; ) {
        refused =
            answers.stream()
                .filter(CompletableFuture::isDone)
                .map(f -> f.handle((r, t) -> OptimizerClient.reason(t)).join())
                .filter("MEMORY_BUDGET_EXCEEDED"::equals)
                .count();
        Thread.sleep(20);
      }
      // Reservation: 1 set (SYNC with 2 replicas sums both pushes into one); budget: one more.
      // Six half-sent PushGradients pushes, each in a set of its own: four are refused.
      assertEquals(4, refused, "the half-sent pushes beyond the budget are refused");
      streams.forEach(s -> s.onError(new RuntimeException("gone")));
      assertTrue(h.server.runs().budget().used() <= budget);
    }
  }

  @Test
  void idleStreams_areClosed_butWaitingForOtherReplicasIsNotIdle() throws Exception {
    try (Harness h =
        new Harness(null, 4 << 20, false, null, b -> b.streamIdle(Duration.ofMillis(300)))) {
      h.newRun("run", SMALL);
      CompletableFuture<PushGradientsResponse> answer = new CompletableFuture<>();
      StreamObserver<PushGradientsRequest> s = h.async.pushGradients(new Into<>(answer));
      s.onNext(RawStreams.header("run", 0, 0, DataType.DATA_TYPE_FLOAT32));
      Throwable t = answer.handle((r, e) -> e).get(10, TimeUnit.SECONDS);
      assertEquals(
          Status.Code.DEADLINE_EXCEEDED, ((StatusRuntimeException) t).getStatus().getCode());
      assertEquals("STREAM_IDLE", OptimizerClient.reason(t));
      // Replica 0 waits a second for replica 1: its Train-like wait is the server's turn.
      h.client.push("run", 0, 0, NAMES, Harness.random(1), DataType.DATA_TYPE_FLOAT32);
      Thread.sleep(1000);
      h.client.push("run", 1, 0, NAMES, Harness.random(2), DataType.DATA_TYPE_FLOAT32);
      assertEquals(1, h.client.status("run").getStep());
    }
  }

  @Test
  void exports_areBoundedAndStalledReadersHoldNoMore() throws Exception {
    RunSpec spec = big(4_000_000, 1); // 32 MB of state: more than the transport's windows
    try (Harness h = new Harness(null, 4 << 20, true, null, b -> b.maxConcurrentExports(1))) {
      h.client.createRun("run", spec);
      h.client.uploadInitialValues("run", List.of("w"), new float[][] {new float[4_000_000]});
      Stall stalled = new Stall();
      h.async.exportState(ExportStateRequest.newBuilder().setRunId("run").build(), stalled);
      stalled.started.get(10, TimeUnit.SECONDS);
      long held = h.server.runs().budget().used();
      assertRefused(
          Status.Code.RESOURCE_EXHAUSTED,
          "CONCURRENCY_LIMIT",
          () ->
              h.blocking
                  .exportState(ExportStateRequest.newBuilder().setRunId("run").build())
                  .forEachRemaining(m -> {}));
      stalled.call.cancel("done", null);
      long end = System.nanoTime() + 10_000_000_000L;
      while (h.server.runs().budget().used() == held && System.nanoTime() < end) {
        Thread.sleep(20);
      }
      assertTrue(h.server.runs().budget().used() < held, "the cancelled export's copy is back");
      List<ExportStateResponse> all = new ArrayList<>();
      h.blocking
          .exportState(ExportStateRequest.newBuilder().setRunId("run").build())
          .forEachRemaining(all::add);
      assertTrue(all.get(all.size() - 1).hasEnd());
    }
  }

  @Test
  void sharedMemory_segmentsAreBudgetedAndUnmappedWhenTheRunGoes(@TempDir Path shm)
      throws Exception {
    RunSpec spec = big(1_000_000, 2); // 8 MB per segment
    try (Harness h =
        new Harness(
            null, 4 << 20, false, shm, b -> b.sharedMemoryBudget(10L << 20 /* one segment */))) {
      h.client.createRun("run", spec);
      h.client.uploadInitialValues("run", List.of("w"), new float[][] {new float[1_000_000]});
      byte[] proof = Files.readAllBytes(Path.of(attach(h, 0, new byte[0]).getProbePath()));
      String path = attach(h, 0, proof).getPath();
      assertTrue(maps().contains(path));
      assertRefused(
          Status.Code.RESOURCE_EXHAUSTED, "MEMORY_BUDGET_EXCEEDED", () -> attach(h, 1, proof));
      h.blocking.deleteRun(DeleteRunRequest.newBuilder().setRunId("run").build());
      assertFalse(maps().contains(path), "a deleted run's segment is unmapped at once");
      assertFalse(Files.exists(Path.of(path)));
      // Its budget is free again.
      h.client.createRun("run", spec);
      h.client.uploadInitialValues("run", List.of("w"), new float[][] {new float[1_000_000]});
      assertNotEquals("", attach(h, 1, proof).getPath());
    }
  }

  @Test
  void snapshotFailures_showInStatusAndHealth(@TempDir Path tmp) throws Exception {
    Path dir = tmp.resolve("snapshots");
    try (Harness h = new Harness(dir, 4 << 20, false, null, b -> b.snapshotEvery(1, 0))) {
      h.newRun("run", SMALL);
      // The snapshot directory turns into a file: every write fails (as on a full disk).
      Files.walk(dir).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      Files.writeString(dir, "not a directory");
      h.client.push("run", 0, 0, NAMES, Harness.random(1), DataType.DATA_TYPE_FLOAT32);
      h.client.push("run", 1, 0, NAMES, Harness.random(2), DataType.DATA_TYPE_FLOAT32);
      long end = System.nanoTime() + 10_000_000_000L;
      while (h.client.status("run").getSnapshotError().isEmpty() && System.nanoTime() < end) {
        Thread.sleep(20);
      }
      assertFalse(h.client.status("run").getSnapshotError().isEmpty());
      var health =
          HealthGrpc.newBlockingStub(h.channel)
              .check(HealthCheckRequest.newBuilder().setService(OptimizerServer.SNAPSHOTS).build());
      assertEquals(HealthCheckResponse.ServingStatus.NOT_SERVING, health.getStatus());
      // The server itself keeps serving.
      assertEquals(
          HealthCheckResponse.ServingStatus.SERVING,
          HealthGrpc.newBlockingStub(h.channel)
              .check(HealthCheckRequest.getDefaultInstance())
              .getStatus());
    }
  }

  private static dev.roadless.proto.optimizer.v1.AttachSharedMemoryResponse attach(
      Harness h, int replica, byte[] proof) {
    return h.blocking.attachSharedMemory(
        AttachSharedMemoryRequest.newBuilder()
            .setRunId("run")
            .setReplica(replica)
            .setLocalityProof(com.google.protobuf.ByteString.copyFrom(proof))
            .build());
  }

  private static String maps() throws java.io.IOException {
    return Files.readString(Path.of("/proc/self/maps"));
  }

  /** An export reader that takes the first message and then never asks for more. */
  private static final class Stall
      implements ClientResponseObserver<ExportStateRequest, ExportStateResponse> {
    final CompletableFuture<Void> started = new CompletableFuture<>();
    ClientCallStreamObserver<ExportStateRequest> call;

    @Override
    public void beforeStart(ClientCallStreamObserver<ExportStateRequest> call) {
      this.call = call;
      call.disableAutoRequestWithInitial(1);
    }

    @Override
    public void onNext(ExportStateResponse value) {
      started.complete(null);
    }

    @Override
    public void onError(Throwable t) {
      started.completeExceptionally(t);
    }

    @Override
    public void onCompleted() {}
  }

  private static class Ignore<T> implements StreamObserver<T> {
    @Override
    public void onNext(T value) {}

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {}
  }

  private static final class Into<T> implements StreamObserver<T> {
    private final CompletableFuture<T> answer;
    private T last;

    Into(CompletableFuture<T> answer) {
      this.answer = answer;
    }

    @Override
    public void onNext(T value) {
      last = value;
    }

    @Override
    public void onError(Throwable t) {
      answer.completeExceptionally(t);
    }

    @Override
    public void onCompleted() {
      answer.complete(last);
    }
  }
}
