package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.PipelineStreams.assertSameState;
import static dev.roadless.optimizer.server.PipelineStreams.assertSameY;
import static dev.roadless.optimizer.server.PipelineStreams.awaitPending;
import static dev.roadless.optimizer.server.PipelineStreams.referenceStep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * SYNC steps with one or two replicas over real HTTP/2, whose pushes are summed into the step's one
 * gradient set as their chunks arrive: bit for bit the core optimizer stepped whole with {@link
 * dev.roadless.optimizer.core.ReplicaMean}'s mean, whatever the chunk sizes and however the two
 * replicas' chunks interleave; a push refused after its chunks touched the set voids the step (the
 * state untouched, the peer answered PUSH_VOIDED), and pushing both again gives the same step.
 */
class OneSetStepTest {
  private static final int STEPS = 3;

  enum Order {
    /** Replica 1's whole push, held, then replica 0's. */
    REVERSED,
    /** Message by message, replica after replica. */
    INTERLEAVED,
    /** Each push's chunks shuffled, the two pushes merged at random. */
    SHUFFLED
  }

  record Case(int replicas, int chunk0, int chunk1, Order order) {}

  private static final List<Case> CASES =
      List.of(
          new Case(1, 1000, 1000, Order.SHUFFLED),
          new Case(2, 40_000, 7_777, Order.INTERLEAVED),
          new Case(2, 7_777, 40_000, Order.REVERSED),
          new Case(2, 65_536, 65_536, Order.INTERLEAVED),
          new Case(2, 1000, 30_001, Order.SHUFFLED),
          new Case(2, 333_333, 999, Order.SHUFFLED));

  @TestFactory
  Stream<DynamicTest> summedSteps_anyChunkingAndInterleaving_bitIdenticalToWholeStep() {
    List<DynamicTest> tests = new ArrayList<>();
    Map<String, Hyperparameters> variants = new LinkedHashMap<>();
    variants.put("ADAMW", Hyperparameters.newBuilder().setLr(0.01).setWeightDecay(0.01).build());
    variants.put("SGD", Hyperparameters.newBuilder().setLr(0.1).setBeta(0.9).build());
    for (var e : variants.entrySet()) {
      OptimizerVariant variant =
          e.getKey().equals("SGD")
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
      String id = "one";
      Run run = PipelineStreams.newRun(h, id, PipelineStreams.spec(variant, hp, c.replicas()));
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      PipelineStreams.Stream[] streams = new PipelineStreams.Stream[c.replicas()];
      for (int r = 0; r < streams.length; r++) {
        streams[r] = new PipelineStreams.Stream(h.async);
      }
      Random random = new Random(c.hashCode());
      for (int k = 0; k < STEPS; k++) {
        float[][][] g = new float[c.replicas()][][];
        List<List<TrainRequest>> pushes = new ArrayList<>();
        for (int r = 0; r < g.length; r++) {
          g[r] = PipelineStreams.random(1000L * k + r, 0.5);
          int chunk = r == 0 ? c.chunk0() : c.chunk1();
          pushes.add(PipelineStreams.push(id, r, k, g[r], chunk, false));
        }
        send(run, streams, pushes, c.order(), random);
        referenceStep(ref, g);
        for (int r = 0; r < streams.length; r++) {
          Answer a = streams[r].answer(k).get(60, TimeUnit.SECONDS);
          assertEquals(PushOutcome.PUSH_OUTCOME_APPLIED, a.header().getPush().getOutcome());
          assertEquals(k + 1, a.header().getParameters().getStep());
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
  void nanInLastChunkAfterPeerCompleted_peerVoided_stateUntouched_repushIsTheSameStep()
      throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "nan");
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      OptimizerState before = run.optimizer().exportState();
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      PipelineStreams.Stream s0 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("nan", 0, 0, g0, 40_000, false).forEach(s0::send);
      awaitPending(run, 0);

      float[][] bad = PipelineStreams.random(12, 0.5);
      bad[2][bad[2].length - 1] = Float.NaN; // in the last chunk of the last tensor
      PipelineStreams.Stream s1 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("nan", 1, 0, bad, 40_000, false).forEach(s1::send);
      StatusRuntimeException refused = refusal(s1, 0);
      assertEquals(Status.Code.INVALID_ARGUMENT, refused.getStatus().getCode());
      assertEquals("NON_FINITE_GRADIENT", OptimizerClient.reason(refused));
      assertVoided(refusal(s0, 0), 0, 0);
      assertEquals(0, run.step());
      assertEquals(List.of(), run.pendingReplicas());
      assertSameState(before, run.optimizer().exportState());

      repushBoth(h, run, ref, g0, g1, 0);
    }
  }

  @Test
  void meanOverflowsAtAChunk_bothPushesVoided_stateUntouched() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "big");
      OptimizerState before = run.optimizer().exportState();
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      g0[0][5] = 3e38f;
      g1[0][5] = 3e38f; // finite, but their float32 sum is not
      PipelineStreams.Stream s0 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("big", 0, 0, g0, 40_000, false).forEach(s0::send);
      awaitPending(run, 0);
      PipelineStreams.Stream s1 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("big", 1, 0, g1, 40_000, false).forEach(s1::send);
      StatusRuntimeException refused = refusal(s1, 0);
      assertEquals("NON_FINITE_GRADIENT", OptimizerClient.reason(refused));
      assertTrue(refused.getStatus().getDescription().contains("overflows"), refused.toString());
      assertVoided(refusal(s0, 0), 0, 0);
      assertEquals(List.of(), run.pendingReplicas());
      assertSameState(before, run.optimizer().exportState());
    }
  }

  @Test
  void streamCancelledMidPush_peerVoided_stateUntouched_repushIsTheSameStep() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "gone");
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      OptimizerState before = run.optimizer().exportState();
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      // Replica 0 sends every chunk but no commit, and they are all taken (counted on the
      // stream's lock, which its cancellation waits for).
      List<TrainRequest> push0 = PipelineStreams.push("gone", 0, 0, g0, 40_000, false);
      double start = bytesIn(h);
      long chunkBytes = 0;
      PipelineStreams.Stream s0 = new PipelineStreams.Stream(h.async);
      for (TrainRequest m : push0.subList(0, push0.size() - 1)) {
        s0.send(m);
        chunkBytes += m.hasChunk() ? m.getChunk().getData().size() : 0;
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (bytesIn(h) - start < chunkBytes) {
        assertTrue(System.nanoTime() < deadline, "replica 0's chunks never arrived");
        Thread.sleep(2);
      }
      PipelineStreams.Stream s1 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("gone", 1, 0, g1, 40_000, false).forEach(s1::send);
      awaitPending(run, 1);
      s0.requests.onError(new IllegalStateException("the trainer went away"));

      assertVoided(refusal(s1, 0), 1, 0);
      assertEquals(0, run.step());
      assertEquals(List.of(), run.pendingReplicas());
      assertSameState(before, run.optimizer().exportState());

      repushBoth(h, run, ref, g0, g1, 0);
    }
  }

  @Test
  void secondStreamOfAReplicaWhileItsFirstIsSumming_firstVoided_stepIsTheSecondsGradient()
      throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "twice");
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      // Stream A of replica 0 sums its first chunks into the step's set, then stalls.
      List<TrainRequest> stale = PipelineStreams.push("twice", 0, 0, g0, 40_000, false);
      double start = bytesIn(h);
      PipelineStreams.Stream a = new PipelineStreams.Stream(h.async);
      a.send(stale.get(0));
      a.send(stale.get(1));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (bytesIn(h) - start < stale.get(1).getChunk().getData().size()) {
        assertTrue(System.nanoTime() < deadline, "stream A's chunk never arrived");
        Thread.sleep(2);
      }
      // Stream B of replica 0 pushes the whole gradient (in a set of its own), then replica 1.
      PipelineStreams.Stream b = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("twice", 0, 0, g0, 40_000, false).forEach(b::send);
      awaitPending(run, 0);
      PipelineStreams.Stream c = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("twice", 1, 0, g1, 7_777, false).forEach(c::send);
      referenceStep(ref, new float[][][] {g0, g1});
      assertSameY(ref, b.answer(0).get(60, TimeUnit.SECONDS).y(), "replica 0, stream B");
      assertSameY(ref, c.answer(0).get(60, TimeUnit.SECONDS).y(), "replica 1");
      assertSameState(ref.exportState(), run.optimizer().exportState());
      a.send(stale.get(2)); // its sum was voided: it learns so at its next chunk
      assertVoided(refusal(a, 0), 0, 0);
    }
  }

  @Test
  void earlyParametersAskedAfterThePeerSummed_earlyYFromTheOneSet_theWholeStepsBits()
      throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "mixed");
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      float[][] g0 = PipelineStreams.random(11, 0.5);
      float[][] g1 = PipelineStreams.random(12, 0.5);
      PipelineStreams.Stream s1 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("mixed", 1, 0, g1, 40_000, false).forEach(s1::send);
      awaitPending(run, 1);
      PipelineStreams.Stream s0 = new PipelineStreams.Stream(h.async);
      PipelineStreams.push("mixed", 0, 0, g0, 40_000, true).forEach(s0::send);
      referenceStep(ref, new float[][][] {g0, g1});
      Answer a0 = s0.answer(0).get(60, TimeUnit.SECONDS);
      // Replica 1's values wait in the one set; the pipeline forms the mean of each block from it
      // and replica 0's own set, and streams y before replica 0's answer header.
      assertTrue(a0.header().getParametersSentEarly(), "early y with the peer in the one set");
      assertEquals(0, a0.chunksAfter());
      assertSameY(ref, a0.y(), "replica 0");
      assertSameY(ref, s1.answer(0).get(60, TimeUnit.SECONDS).y(), "replica 1");
      assertSameState(ref.exportState(), run.optimizer().exportState());
    }
  }

  @Test
  void replicaSession_pushVoided_pushesTheSameGradientAgainByItself() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      Run run = PipelineStreams.newRun(h, "client");
      ScheduleFreeOptimizer ref = PipelineStreams.reference(run);
      var s0 = new ReplicaSession(h.client, "client", 0, DataType.DATA_TYPE_FLOAT32);
      var s1 = new ReplicaSession(h.client, "client", 1, DataType.DATA_TYPE_FLOAT32);
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
          // Refused at its last chunk: replica 0's held push is voided, and its session pushes
          // the same gradient again (held again before replica 1's good push).
          float[][] bad = PipelineStreams.random(100L * k + 1, 0.5);
          bad[2][bad[2].length - 1] = Float.NaN;
          Parameters before = y1;
          Harness.assertRefused(
              Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT", () -> s1.next(before, bad));
          assertEquals(k, run.step());
          awaitPending(run, 0);
        }
        y1 = s1.next(y1, g1);
        y0 = first.get(60, TimeUnit.SECONDS);
        referenceStep(ref, new float[][][] {g0, g1});
        for (Parameters p : List.of(y0, y1)) {
          assertEquals(k + 1, p.step());
          assertSameY(ref, p.values(), "step " + k);
        }
      }
      assertEquals(1.0, h.metrics.refusedCount("PUSH_VOIDED"));
      assertSameState(ref.exportState(), run.optimizer().exportState());
      pool.shutdown();
      s0.close();
      s1.close();
    }
  }

  /** Both replicas push again on new streams: the step is the one without the refusal. */
  private static void repushBoth(
      Harness h, Run run, ScheduleFreeOptimizer ref, float[][] g0, float[][] g1, long step)
      throws Exception {
    String id = run.id();
    PipelineStreams.Stream a = new PipelineStreams.Stream(h.async);
    PipelineStreams.Stream b = new PipelineStreams.Stream(h.async);
    send(
        run,
        new PipelineStreams.Stream[] {a, b},
        List.of(
            PipelineStreams.push(id, 0, step, g0, 40_000, false),
            PipelineStreams.push(id, 1, step, g1, 40_000, false)),
        Order.INTERLEAVED,
        null);
    referenceStep(ref, new float[][][] {g0, g1});
    assertSameY(ref, a.answer(0).get(60, TimeUnit.SECONDS).y(), "replica 0 again");
    assertSameY(ref, b.answer(0).get(60, TimeUnit.SECONDS).y(), "replica 1 again");
    assertSameState(ref.exportState(), run.optimizer().exportState());
  }

  private static StatusRuntimeException refusal(PipelineStreams.Stream s, int n) {
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> s.answer(n).get(60, TimeUnit.SECONDS));
    return (StatusRuntimeException) e.getCause();
  }

  private static void assertVoided(StatusRuntimeException e, int replica, long step) {
    assertEquals(Status.Code.ABORTED, e.getStatus().getCode(), e.toString());
    assertEquals("PUSH_VOIDED", OptimizerClient.reason(e));
    assertTrue(e.getStatus().getDescription().contains("push the same gradient"), e.toString());
    var info =
        StatusProto.fromThrowable(e).getDetailsList().stream()
            .filter(d -> d.is(com.google.rpc.ErrorInfo.class))
            .findFirst()
            .orElseThrow();
    try {
      var meta = info.unpack(com.google.rpc.ErrorInfo.class).getMetadataMap();
      assertEquals(String.valueOf(replica), meta.get("replica"));
      assertEquals(String.valueOf(step), meta.get("step"));
    } catch (com.google.protobuf.InvalidProtocolBufferException x) {
      throw new AssertionError(x);
    }
  }

  private static double bytesIn(Harness h) {
    return h.metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getName().startsWith("roadless_bytes"))
        .flatMap(m -> m.getDataPoints().stream())
        .filter(p -> "in".equals(p.getLabels().get("direction")))
        .mapToDouble(
            p ->
                ((io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot) p)
                    .getValue())
        .sum();
  }

  private static void send(
      Run run,
      PipelineStreams.Stream[] streams,
      List<List<TrainRequest>> pushes,
      Order order,
      Random random)
      throws InterruptedException {
    if (order == Order.REVERSED) {
      for (int r = streams.length - 1; r >= 0; r--) {
        pushes.get(r).forEach(streams[r]::send);
        if (r > 0) {
          awaitPending(run, r);
        }
      }
      return;
    }
    List<List<TrainRequest>> queues = new ArrayList<>();
    for (List<TrainRequest> p : pushes) {
      List<TrainRequest> q = new ArrayList<>(p);
      if (order == Order.SHUFFLED) {
        Collections.shuffle(q.subList(1, q.size() - 1), random); // header first, commit last
      }
      queues.add(q);
    }
    int[] next = new int[queues.size()];
    int left = queues.stream().mapToInt(List::size).sum();
    for (int turn = 0; left > 0; turn++) {
      int r = order == Order.SHUFFLED ? random.nextInt(queues.size()) : turn % queues.size();
      if (next[r] < queues.get(r).size()) {
        streams[r].send(queues.get(r).get(next[r]++));
        left--;
      }
    }
  }
}
