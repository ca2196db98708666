package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.Run;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The run's TRAIN snapshot is a view that derives y from x and z as it is read. A reader that is
 * still reading when the state changes (a step, a hyperparameter change, the run's deletion and an
 * import under its id) must keep reading y of the snapshot's step, bit for bit: the run stores y
 * for it before the change. Each test reads part of y, changes the run, reads the rest.
 */
class DetachedYTest {

  /** y of the run's current step as the optimizer reads it, tensor by tensor. */
  private static float[][] optimizerY(Run run) {
    return NAMES.stream().map(n -> run.optimizer().read(Sequence.TRAIN, n)).toArray(float[][]::new);
  }

  /** Reads every tensor of {@code held}: elements [0, half) now, the rest after {@code change}. */
  private static float[][] readAcross(ParameterSnapshot held, Runnable change) {
    float[][] out = new float[NAMES.size()][];
    for (int t = 0; t < out.length; t++) {
      out[t] = new float[held.length(t)];
      held.read(t, 0, out[t], 0, out[t].length / 2);
    }
    change.run();
    for (int t = 0; t < out.length; t++) {
      int half = out[t].length / 2;
      // In two ranges, one element then the rest, at an offset in the destination.
      held.read(t, half, out[t], half, 1);
      held.read(t, half + 1, out[t], half + 1, out[t].length - half - 1);
    }
    return out;
  }

  private static void assertSameY(float[][] expected, float[][] actual) {
    for (int t = 0; t < expected.length; t++) {
      assertArrayEquals(expected[t], actual[t], "tensor " + NAMES.get(t));
    }
  }

  private static void push(Harness h, String id, int replica, int step) {
    h.client.push(
        id,
        replica,
        step,
        NAMES,
        TrainingProtocolTest.grad(step, replica),
        DataType.DATA_TYPE_FLOAT32);
  }

  @Test
  void slowReader_acrossSyncSteps_readsYOfItsStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("sync", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      Run run = h.server.runs().get("sync");
      for (int r = 0; r < 2; r++) {
        push(h, "sync", r, 0);
      }
      ParameterSnapshot held = run.acquireParameters(Sequence.TRAIN);
      float[][] expected = optimizerY(run);
      assertEquals(1, held.step());
      float[][] got =
          readAcross(
              held,
              () -> {
                for (int k = 1; k < 4; k++) {
                  for (int r = 0; r < 2; r++) {
                    push(h, "sync", r, k);
                  }
                }
              });
      assertEquals(4, run.step());
      assertFalse(Arrays.equals(expected[0], optimizerY(run)[0]), "the steps changed nothing");
      assertSameY(expected, got);
      assertSameY(expected, held.values());
      held.release();
      // A reader that holds nothing across a step reads the new y straight from the state.
      ParameterSnapshot now = run.acquireParameters(Sequence.TRAIN);
      assertSameY(optimizerY(run), readAcross(now, () -> {}));
      now.release();
    }
  }

  @Test
  void slowReader_acrossAsyncSteps_readsYOfItsStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("async", Harness.spec(2, StepMode.STEP_MODE_ASYNC, 4));
      Run run = h.server.runs().get("async");
      push(h, "async", 0, 0);
      ParameterSnapshot first = run.acquireParameters(Sequence.TRAIN);
      float[][] firstY = optimizerY(run);
      push(h, "async", 1, 0);
      ParameterSnapshot second = run.acquireParameters(Sequence.TRAIN);
      float[][] secondY = optimizerY(run);
      float[][] got = readAcross(first, () -> push(h, "async", 0, 1));
      float[][] got2 = readAcross(second, () -> push(h, "async", 1, 2));
      assertEquals(List.of(1L, 2L, 4L), List.of(first.step(), second.step(), run.step()));
      assertSameY(firstY, got);
      assertSameY(secondY, got2);
      first.release();
      second.release();
    }
  }

  @Test
  void slowReader_acrossLrAndBetaChanges_readsYOfItsStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("hp", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      Run run = h.server.runs().get("hp");
      push(h, "hp", 0, 0);
      push(h, "hp", 0, 1);
      ParameterSnapshot held = run.acquireParameters(Sequence.TRAIN);
      float[][] expected = optimizerY(run);
      float[][] got =
          readAcross(
              held,
              () ->
                  h.client.updateHyperparameters(
                      "hp", "all", Hyperparameters.newBuilder().setLr(0.5).setBeta(0.5).build()));
      assertSameY(expected, got);
      // The change applies from the next step on: y of this step is the same for a new reader.
      ParameterSnapshot again = run.acquireParameters(Sequence.TRAIN);
      assertSameY(expected, readAcross(again, () -> {}));
      again.release();
      // Across the step that uses the new beta, the held view still reads y of its step.
      float[][] after = readAcross(held, () -> push(h, "hp", 0, 2));
      assertSameY(expected, after);
      assertFalse(Arrays.equals(expected[0], optimizerY(run)[0]), "the step changed nothing");
      held.release();
      ParameterSnapshot now = run.acquireParameters(Sequence.TRAIN);
      assertEquals(3, now.step());
      assertSameY(optimizerY(run), readAcross(now, () -> {}));
      now.release();
    }
  }

  @Test
  void slowReader_acrossDeleteAndImport_readsYOfItsStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("gone", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      h.newRun("other", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      Run run = h.server.runs().get("gone");
      push(h, "gone", 0, 0);
      for (int k = 0; k < 3; k++) {
        push(h, "other", 0, k);
      }
      ParameterSnapshot held = run.acquireParameters(Sequence.TRAIN);
      float[][] expected = optimizerY(run);
      Run other = h.server.runs().get("other");
      float[][] got =
          readAcross(
              held,
              () -> {
                h.blocking.deleteRun(DeleteRunRequest.newBuilder().setRunId("gone").build());
                var snapshot = other.snapshot();
                h.server
                    .runs()
                    .importState(
                        "gone", snapshot.config(), snapshot.state(), snapshot.initialDigest());
              });
      assertSameY(expected, got);
      held.release();
      Run imported = h.server.runs().get("gone");
      assertEquals(3, imported.step());
      ParameterSnapshot now = imported.acquireParameters(Sequence.TRAIN);
      assertSameY(optimizerY(other), readAcross(now, () -> {}));
      now.release();
    }
  }

  /** A [n] tensor, one group, SGD-SF, one replica. */
  private static RunSpec big(int n) {
    return RunSpec.newBuilder()
        .addTensors(TensorDescriptor.newBuilder().setName("w").addShape(n))
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

  private static float[] ramp(int n, float scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = scale * ((i % 1000) - 500) / 500f;
    }
    return v;
  }

  /**
   * Over real HTTP/2, a GetParameters(TRAIN) answer far larger than what the transport buffers is
   * read one message at a time while the run steps on: its bytes are y at its header's step.
   */
  @Test
  void slowGetParameters_overLoopback_acrossSteps_sendsYOfItsStep() throws Exception {
    int n = 4 << 20; // 16 MiB of y: more than the pump and the HTTP/2 windows hold
    try (Harness h = new Harness(null, 4 << 20, true)) {
      h.client.createRun("big", big(n));
      h.client.uploadInitialValues("big", List.of("w"), new float[][] {ramp(n, 1f)});
      Run run = h.server.runs().get("big");
      h.client.push(
          "big", 0, 0, List.of("w"), new float[][] {ramp(n, 0.5f)}, DataType.DATA_TYPE_FLOAT32);
      float[] expected = run.optimizer().read(Sequence.TRAIN, "w");
      LinkedBlockingQueue<GetParametersResponse> inbox = new LinkedBlockingQueue<>();
      CompletableFuture<ClientCallStreamObserver<GetParametersRequest>> call =
          new CompletableFuture<>();
      CompletableFuture<Void> done = new CompletableFuture<>();
      h.async.getParameters(
          GetParametersRequest.newBuilder()
              .setRunId("big")
              .setSequence(dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_TRAIN)
              .build(),
          new ClientResponseObserver<GetParametersRequest, GetParametersResponse>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<GetParametersRequest> stream) {
              stream.disableAutoRequestWithInitial(2);
              call.complete(stream);
            }

            @Override
            public void onNext(GetParametersResponse value) {
              inbox.add(value);
            }

            @Override
            public void onError(Throwable t) {
              done.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {
              done.complete(null);
            }
          });
      GetParametersResponse header = inbox.poll(20, TimeUnit.SECONDS);
      GetParametersResponse first = inbox.poll(20, TimeUnit.SECONDS);
      assertNotNull(first);
      assertEquals(1, header.getHeader().getStep());
      for (int k = 1; k < 3; k++) {
        h.client.push(
            "big", 0, k, List.of("w"), new float[][] {ramp(n, k)}, DataType.DATA_TYPE_FLOAT32);
      }
      assertEquals(3, run.step());
      assertFalse(
          Arrays.equals(expected, run.optimizer().read(Sequence.TRAIN, "w")),
          "steps changed nothing");
      call.get().request(Integer.MAX_VALUE);
      done.get(60, TimeUnit.SECONDS);
      float[] got = new float[n];
      inbox.add(first);
      for (GetParametersResponse m : inbox) {
        if (m.hasChunk()) {
          ByteBuffer b =
              m.getChunk().getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
          b.asFloatBuffer().get(got, (int) m.getChunk().getElementOffset(), b.remaining() / 4);
        }
      }
      assertArrayEquals(expected, got);
    }
  }
}
