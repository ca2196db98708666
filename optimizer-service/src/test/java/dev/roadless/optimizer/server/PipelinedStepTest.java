package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.PipelineStreams.assertSameState;
import static dev.roadless.optimizer.server.PipelineStreams.assertSameY;
import static dev.roadless.optimizer.server.PipelineStreams.awaitPending;
import static dev.roadless.optimizer.server.PipelineStreams.referenceStep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.server.PipelineStreams.Answer;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Pipelined SYNC steps over real HTTP/2: y streamed while gradient chunks arrive, bit for bit the
 * core optimizer stepped whole with the same gradients, across chunk sizes, arrival orders, replica
 * counts and variants; refusals at the last chunk leave the state untouched.
 */
class PipelinedStepTest {
  private static final int STEPS = 3;

  enum Order {
    /** Every replica's whole push, the highest replica first (each held before the next). */
    REVERSED,
    /** Chunk by chunk, replica after replica. */
    INTERLEAVED
  }

  record Case(int replicas, int chunkElements, Order order, boolean allEarly) {}

  private static final List<Case> CASES =
      List.of(
          new Case(1, 1000, Order.INTERLEAVED, true),
          new Case(2, 65_536, Order.REVERSED, true),
          new Case(2, 40_000, Order.INTERLEAVED, false),
          new Case(3, 1000, Order.INTERLEAVED, true),
          new Case(3, 40_000, Order.REVERSED, true));

  private static Map<String, Hyperparameters> variants() {
    Map<String, Hyperparameters> v = new LinkedHashMap<>();
    v.put("ADAMW", Hyperparameters.newBuilder().setLr(0.01).setWeightDecay(0.01).build());
    v.put("SGD", Hyperparameters.newBuilder().setLr(0.1).setBeta(0.9).setWarmupSteps(2).build());
    v.put("ADAMW-inner", Hyperparameters.newBuilder().setLr(0.01).setInnerMomentum(0.9).build());
    return v;
  }

  @TestFactory
  Stream<DynamicTest> pipelinedSteps_anyChunkingOrderAndReplicas_bitIdenticalToWholeStep()
      throws Exception {
    List<DynamicTest> tests = new ArrayList<>();
    for (var e : variants().entrySet()) {
      OptimizerVariant variant =
          e.getKey().startsWith("SGD")
              ? OptimizerVariant.OPTIMIZER_VARIANT_SGD
              : OptimizerVariant.OPTIMIZER_VARIANT_ADAMW;
      for (Case c : CASES) {
        tests.add(
            DynamicTest.dynamicTest(e.getKey() + " " + c, () -> check(variant, e.getValue(), c)));
      }
    }
    return tests.stream();
  }

  private static void check(OptimizerVariant variant, Hyperparameters hp, Case c) throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      String id = "pipe";
      Run run = PipelineStreams.newRun(h, id, PipelineStreams.spec(variant, hp, c.replicas()));
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      PipelineStreams.Stream[] streams = new PipelineStreams.Stream[c.replicas()];
      for (int r = 0; r < streams.length; r++) {
        streams[r] = new PipelineStreams.Stream(h.async);
      }
      for (int k = 0; k < STEPS; k++) {
        float[][][] g = new float[c.replicas()][][];
        List<List<TrainRequest>> pushes = new ArrayList<>();
        for (int r = 0; r < g.length; r++) {
          g[r] = PipelineStreams.random(1000L * k + r, 0.5);
          boolean early = c.allEarly() || r == 0;
          pushes.add(PipelineStreams.push(id, r, k, g[r], c.chunkElements(), early));
        }
        send(run, streams, pushes, c.order());
        referenceStep(ref, g);
        for (int r = 0; r < streams.length; r++) {
          Answer a = streams[r].answer(k).get(60, TimeUnit.SECONDS);
          assertEquals(PushOutcome.PUSH_OUTCOME_APPLIED, a.header().getPush().getOutcome());
          assertEquals(k + 1, a.header().getParameters().getStep());
          boolean early = c.allEarly() || r == 0;
          assertEquals(early, a.header().getParametersSentEarly(), "replica " + r);
          if (early) {
            assertEquals(0, a.chunksAfter(), "every y chunk before the header");
          }
          assertSameY(ref, a.y(), "step " + k + " replica " + r);
        }
      }
      assertSameState(ref.exportState(), run.optimizer().exportState());
      for (PipelineStreams.Stream s : streams) {
        s.requests.onCompleted();
      }
    }
  }

  @Test
  void pushRefusedAtItsLastChunk_leavesStateUntouched_correctedRepushCompletesIdentically()
      throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      String id = "nan";
      Run run = PipelineStreams.newRun(h, id);
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      OptimizerState before = run.optimizer().exportState();
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      PipelineStreams.Stream s0 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push(id, 0, 0, g0, 40_000, true).forEach(s0::send);
      awaitPending(run, 0);

      float[][] bad = PipelineStreams.random(12, 0.5);
      bad[2][bad[2].length - 1] = Float.NaN; // in the last chunk of the last tensor
      PipelineStreams.Stream s1 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push(id, 1, 0, bad, 40_000, true).forEach(s1::send);
      ExecutionException refused =
          org.junit.jupiter.api.Assertions.assertThrows(
              ExecutionException.class, () -> s1.answer(0).get(60, TimeUnit.SECONDS));
      StatusRuntimeException status = (StatusRuntimeException) refused.getCause();
      assertEquals(Status.Code.INVALID_ARGUMENT, status.getStatus().getCode());
      assertEquals("NON_FINITE_GRADIENT", OptimizerClient.reason(status));
      assertEquals(0, run.step());
      assertSameState(before, run.optimizer().exportState());

      PipelineStreams.Stream again = new PipelineStreams.Stream(h.async);
      PipelineStreams.push(id, 1, 0, g1, 40_000, true).forEach(again::send);
      referenceStep(ref, new float[][][] {g0, g1});
      Answer a0 = s0.answer(0).get(60, TimeUnit.SECONDS);
      Answer a1 = again.answer(0).get(60, TimeUnit.SECONDS);
      assertFalse(a0.header().getParametersSentEarly(), "early y of a voided step is void");
      assertSameY(ref, a0.y(), "held replica");
      assertSameY(ref, a1.y(), "corrected replica");
      assertSameState(ref.exportState(), run.optimizer().exportState());

      // The next step is pipelined again.
      float[][][] g = {PipelineStreams.random(21, 0.5), PipelineStreams.random(22, 0.5)};
      send(
          run,
          new PipelineStreams.Stream[] {s0, again},
          List.of(
              PipelineStreams.push(id, 0, 1, g[0], 40_000, true),
              PipelineStreams.push(id, 1, 1, g[1], 40_000, true)),
          Order.INTERLEAVED);
      referenceStep(ref, g);
      for (PipelineStreams.Stream s : List.of(s0, again)) {
        Answer a = s.answer(1).get(60, TimeUnit.SECONDS);
        assertTrue(a.header().getParametersSentEarly());
        assertSameY(ref, a.y(), "step 1");
      }
      assertSameState(ref.exportState(), run.optimizer().exportState());
    }
  }

  @Test
  void replicaSessions_voidedEarlyChunksDropped_bothGetTheWholeStepsY() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      String id = "sessions";
      Run run = PipelineStreams.newRun(h, id);
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      var early =
          new dev.roadless.optimizer.client.OptimizerClient(
              h.channel,
              dev.roadless.optimizer.client.ClientOptions.defaults()
                  .withMaxAttempts(1)
                  .withEarlyParameters(true));
      var s0 = new ReplicaSession(early, id, 0, DataType.DATA_TYPE_FLOAT32);
      var s1 = new ReplicaSession(early, id, 1, DataType.DATA_TYPE_FLOAT32);
      Parameters y0 = s0.current();
      Parameters y1 = s1.current();
      var pool = Executors.newSingleThreadExecutor();
      for (int k = 0; k < 3; k++) {
        float[][] g0 = PipelineStreams.random(100L * k, 0.5);
        float[][] g1 = PipelineStreams.random(100L * k + 1, 0.5);
        Parameters at = y0;
        CompletableFuture<Parameters> first =
            CompletableFuture.supplyAsync(() -> s0.next(at, g0), pool);
        awaitPending(run, 0);
        if (k == 1) {
          // Refused at its last chunk after the first blocks' early y went to both streams.
          float[][] bad = PipelineStreams.random(100L * k + 1, 0.5);
          bad[2][bad[2].length - 1] = Float.NaN;
          Parameters before = y1;
          Harness.assertRefused(
              Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT", () -> s1.next(before, bad));
          assertEquals(k, run.step());
        }
        y1 = s1.next(y1, g1);
        y0 = first.get(60, TimeUnit.SECONDS);
        referenceStep(ref, new float[][][] {g0, g1});
        for (Parameters p : List.of(y0, y1)) {
          assertEquals(k + 1, p.step());
          assertSameY(ref, p.values(), "step " + k);
        }
      }
      assertSameState(ref.exportState(), run.optimizer().exportState());
      pool.shutdown();
      s0.close();
      s1.close();
    }
  }

  private static void send(
      Run run, PipelineStreams.Stream[] streams, List<List<TrainRequest>> pushes, Order order)
      throws InterruptedException {
    if (order == Order.REVERSED) {
      for (int r = streams.length - 1; r >= 0; r--) {
        pushes.get(r).forEach(streams[r]::send);
        if (r > 0) {
          awaitPending(run, r); // all of its chunks are in before the next replica's first
        }
      }
      return;
    }
    int longest = pushes.stream().mapToInt(List::size).max().orElse(0);
    for (int i = 0; i < longest; i++) {
      for (int r = 0; r < streams.length; r++) {
        if (i < pushes.get(r).size()) {
          streams[r].send(pushes.get(r).get(i));
        }
      }
    }
  }
}
