package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static dev.roadless.optimizer.server.Harness.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryResponse;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Same-host replicas through shared-memory segments: the same numbers as chunks, the same refusals,
 * and the segment's lifecycle (attach, delete, shutdown, sweep of dead servers' files).
 */
class SharedMemoryTest {
  private static final long[] SIZES = {12, 5};

  @TempDir Path shm;

  private Harness harness() throws Exception {
    return new Harness(null, 4 << 20, false, shm);
  }

  private static float[][] gradient(long step, int replica) {
    return Harness.random(1000 * step + replica);
  }

  /** Trains {@code steps} SYNC steps with {@code replicas} sessions in parallel; returns y. */
  private static Parameters train(
      Harness h, String run, int replicas, int steps, boolean sharedMemory) throws Exception {
    OptimizerClient client =
        new OptimizerClient(
            h.channel,
            ClientOptions.defaults()
                .withMaxAttempts(1)
                .withCallDeadline(Duration.ofSeconds(20))
                .withSharedMemory(sharedMemory));
    ExecutorService pool = Executors.newFixedThreadPool(replicas);
    try {
      List<Future<Parameters>> results = new ArrayList<>();
      for (int r = 0; r < replicas; r++) {
        int replica = r;
        results.add(
            pool.submit(
                () -> {
                  try (ReplicaSession s =
                      new ReplicaSession(client, run, replica, DataType.DATA_TYPE_FLOAT32, true)) {
                    Parameters y = s.current();
                    while (y.step() < steps) {
                      y = s.next(y, gradient(y.step(), replica));
                      assertEquals(sharedMemory, s.usingSharedMemory(), "transport");
                    }
                    return y;
                  }
                }));
      }
      Parameters last = null;
      for (Future<Parameters> f : results) {
        last = f.get(60, TimeUnit.SECONDS);
      }
      return last;
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void sync_sharedMemory_bitIdenticalToChunks() throws Exception {
    try (Harness h = harness()) {
      trainBothWays(h, Harness.spec(3, StepMode.STEP_MODE_SYNC, 0), 12);
      // 3 replicas x 12 steps x 17 floats, each way
      assertEquals(3 * 12 * 17 * 4.0, sharedMemoryBytes(h, "in"));
      assertEquals(3 * 12 * 17 * 4.0, sharedMemoryBytes(h, "out"));
    }
  }

  @Test
  void async_sharedMemory_bitIdenticalToChunks() throws Exception {
    try (Harness h = harness()) {
      trainBothWays(h, Harness.spec(1, StepMode.STEP_MODE_ASYNC, 4), 9);
    }
  }

  /** Trains run "chunks" over chunks and run "shm" through segments; both end identical. */
  private static void trainBothWays(Harness h, RunSpec spec, int steps) throws Exception {
    h.newRun("chunks", spec);
    h.newRun("shm", spec);
    Parameters viaChunks = train(h, "chunks", spec.getReplicas(), steps, false);
    Parameters viaShm = train(h, "shm", spec.getReplicas(), steps, true);
    assertEquals(steps, viaShm.step());
    for (int t = 0; t < NAMES.size(); t++) {
      assertArrayEquals(viaChunks.values()[t], viaShm.values()[t], NAMES.get(t));
    }
    assertEquals(
        h.fingerprint("chunks").replace("chunks", "?"), h.fingerprint("shm").replace("shm", "?"));
  }

  /**
   * The mean is the same bits whichever replica pushes last: with one or two replicas the last
   * one's segment is averaged in the same pass that reads it, with more every gradient is copied
   * out first.
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3})
  void sync_anyArrivalOrder_sameBitsAsChunks(int replicas) throws Exception {
    List<List<Integer>> orders = new ArrayList<>();
    permutations(new ArrayList<>(), replicas, orders);
    try (Harness h = harness()) {
      h.newRun("chunks", Harness.spec(replicas, StepMode.STEP_MODE_SYNC, 0));
      for (int step = 0; step < 4; step++) {
        for (int r = 0; r < replicas; r++) {
          h.client.push("chunks", r, step, NAMES, gradient(step, r), DataType.DATA_TYPE_FLOAT32);
        }
      }
      String expected = h.fingerprint("chunks").replace("chunks", "?");
      for (int o = 0; o < orders.size(); o++) {
        List<Integer> order = orders.get(o);
        String run = "order" + o;
        h.newRun(run, Harness.spec(replicas, StepMode.STEP_MODE_SYNC, 0));
        AttachSharedMemoryResponse[] a = new AttachSharedMemoryResponse[replicas];
        SharedSegment[] segments = new SharedSegment[replicas];
        for (int r = 0; r < replicas; r++) {
          a[r] = attach(h, run, r);
          segments[r] = map(a[r]);
        }
        for (int step = 0; step < 4; step++) {
          for (int r : order) {
            segments[r].writeGradient(gradient(step, r));
            PushGradientsResponse answer = pushGradients(h, header(run, r, step, a[r].getToken()));
            assertEquals(
                r == order.get(replicas - 1),
                answer.getOutcome() == PushOutcome.PUSH_OUTCOME_APPLIED);
          }
        }
        assertEquals(expected, h.fingerprint(run).replace(run, "?"), "order " + order);
      }
    }
  }

  private static void permutations(List<Integer> prefix, int n, List<List<Integer>> out) {
    if (prefix.size() == n) {
      out.add(List.copyOf(prefix));
      return;
    }
    for (int r = 0; r < n; r++) {
      if (!prefix.contains(r)) {
        prefix.add(r);
        permutations(prefix, n, out);
        prefix.remove(prefix.size() - 1);
      }
    }
  }

  /**
   * SYNC, two replicas: a non-finite gradient in a segment refuses that push (on its own stream)
   * and nothing else; the other replica's push waits for the corrected one.
   */
  @Test
  void sync_nonFinitePush_refused_otherWaitsForItsCorrection() throws Exception {
    try (Harness h = harness()) {
      h.newRun("chunks", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      for (int r = 0; r < 2; r++) {
        h.client.push("chunks", r, 0, NAMES, gradient(0, r), DataType.DATA_TYPE_FLOAT32);
      }
      h.newRun("shm", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a0 = attach(h, "shm", 0);
      AttachSharedMemoryResponse a1 = attach(h, "shm", 1);
      SharedSegment s0 = map(a0);
      SharedSegment s1 = map(a1);
      String before = values(h, "shm");

      float[][] bad = gradient(0, 0);
      bad[0][7] = Float.POSITIVE_INFINITY;
      s0.writeGradient(bad);
      BlockingQueue<Object> first = open(h, header("shm", 0, 0, a0.getToken()), 17);
      assertReason(
          first.poll(20, TimeUnit.SECONDS), Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT");
      awaitPending(h, "shm", List.of());
      s1.writeGradient(gradient(0, 1));
      BlockingQueue<Object> second = open(h, header("shm", 1, 0, a1.getToken()), 17);
      awaitPending(h, "shm", List.of(1));
      assertEquals(null, second.poll(300, TimeUnit.MILLISECONDS), "replica 1 must still wait");
      assertEquals(List.of(1), h.server.runs().get("shm").pendingReplicas());
      assertEquals(before, values(h, "shm"), "a refused push changed the run");
      assertEquals(1.0, h.metrics.refusedCount("NON_FINITE_GRADIENT"));

      s0.writeGradient(gradient(0, 0));
      BlockingQueue<Object> corrected = open(h, header("shm", 0, 0, a0.getToken()), 17);
      for (BlockingQueue<Object> q : List.of(second, corrected)) {
        TrainResponse answer = assertInstanceOf(TrainResponse.class, q.poll(20, TimeUnit.SECONDS));
        assertTrue(answer.getHeader().getParametersInSharedMemory());
        assertEquals(1, answer.getHeader().getParameters().getStep());
      }
      assertEquals(
          h.fingerprint("chunks").replace("chunks", "?"), h.fingerprint("shm").replace("shm", "?"));
    }
  }

  /**
   * SYNC, two replicas: two finite gradients whose sum overflows float32. The push that completes
   * the step (its mean formed straight from its segment) is refused; the other stays pending until
   * a corrected push, which gives the same bits as chunks.
   */
  @Test
  void sync_finiteGradientsWhoseMeanOverflows_completingPushRefused() throws Exception {
    try (Harness h = harness()) {
      float[][] g0 = gradient(0, 0);
      float[][] g1 = gradient(0, 1);
      g1[1][2] = -3e38f;
      g0[1][2] = -2e38f;
      h.newRun("shm", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a0 = attach(h, "shm", 0);
      AttachSharedMemoryResponse a1 = attach(h, "shm", 1);
      SharedSegment s0 = map(a0);
      SharedSegment s1 = map(a1);
      s1.writeGradient(g1);
      BlockingQueue<Object> first = open(h, header("shm", 1, 0, a1.getToken()), 17);
      awaitPending(h, "shm", List.of(1));
      String before = values(h, "shm");

      s0.writeGradient(g0);
      Object refused = push(h, header("shm", 0, 0, a0.getToken()), false, 17);
      assertReason(refused, Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT");
      assertTrue(
          Status.fromThrowable((Throwable) refused).getDescription().contains("sum overflows"),
          refused.toString());
      assertEquals(List.of(1), h.server.runs().get("shm").pendingReplicas());
      assertEquals(before, values(h, "shm"), "a refused push changed the run");
      assertEquals(null, first.poll(200, TimeUnit.MILLISECONDS), "replica 1 must still wait");

      g0[1][2] = 3e38f;
      s0.writeGradient(g0);
      BlockingQueue<Object> corrected = open(h, header("shm", 0, 0, a0.getToken()), 17);
      for (BlockingQueue<Object> q : List.of(first, corrected)) {
        TrainResponse answer = assertInstanceOf(TrainResponse.class, q.poll(20, TimeUnit.SECONDS));
        assertEquals(1, answer.getHeader().getParameters().getStep());
      }
      h.newRun("chunks", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      h.client.push("chunks", 0, 0, NAMES, g0, DataType.DATA_TYPE_FLOAT32);
      h.client.push("chunks", 1, 0, NAMES, g1, DataType.DATA_TYPE_FLOAT32);
      assertEquals(
          h.fingerprint("chunks").replace("chunks", "?"), h.fingerprint("shm").replace("shm", "?"));
    }
  }

  /**
   * SYNC, three replicas (every push copied out of its segment, the mean formed by the run): the
   * copies report that a gradient is too large to rule out an overflow, so the mean is checked, and
   * the push that completes the step is refused with the run unchanged.
   */
  @Test
  void sync_threeReplicas_meanOverflow_completingPushRefused() throws Exception {
    try (Harness h = harness()) {
      h.newRun("shm", Harness.spec(3, StepMode.STEP_MODE_SYNC, 0));
      List<BlockingQueue<Object>> waiting = new java.util.ArrayList<>();
      for (int r = 0; r < 2; r++) {
        AttachSharedMemoryResponse a = attach(h, "shm", r);
        float[][] g = gradient(0, r);
        g[0][4] = 3e38f;
        map(a).writeGradient(g);
        waiting.add(open(h, header("shm", r, 0, a.getToken()), 17));
        awaitPending(h, "shm", r == 0 ? List.of(0) : List.of(0, 1));
      }
      String before = values(h, "shm");
      AttachSharedMemoryResponse a2 = attach(h, "shm", 2);
      map(a2).writeGradient(gradient(0, 2));
      Object refused = push(h, header("shm", 2, 0, a2.getToken()), false, 17);
      assertReason(refused, Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT");
      assertTrue(
          Status.fromThrowable((Throwable) refused).getDescription().contains("sum overflows"),
          refused.toString());
      assertEquals(before, values(h, "shm"), "a refused push changed the run");
      assertEquals(List.of(0, 1), h.server.runs().get("shm").pendingReplicas());
      for (BlockingQueue<Object> q : waiting) {
        assertEquals(null, q.poll(100, TimeUnit.MILLISECONDS), "the pending pushes still wait");
      }
    }
  }

  /**
   * SYNC, two replicas on different transports, in both orders: a push waiting in its segment is
   * read when a chunk push completes the step, and a chunk push waiting in arrays is averaged with
   * a completing segment push. Same bits as chunks only.
   */
  @Test
  void sync_mixedTransports_eitherOrder_sameBitsAsChunks() throws Exception {
    try (Harness h = harness()) {
      h.newRun("chunks", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      for (int r = 0; r < 2; r++) {
        h.client.push("chunks", r, 0, NAMES, gradient(0, r), DataType.DATA_TYPE_FLOAT32);
      }
      String expected = h.fingerprint("chunks").replace("chunks", "?");
      for (int shmReplica = 0; shmReplica < 2; shmReplica++) {
        for (boolean shmFirst : new boolean[] {true, false}) {
          String run = "mixed-" + shmReplica + "-" + shmFirst;
          h.newRun(run, Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
          AttachSharedMemoryResponse a = attach(h, run, shmReplica);
          map(a).writeGradient(gradient(0, shmReplica));
          int chunkReplica = 1 - shmReplica;
          BlockingQueue<Object> viaSegment = null;
          if (shmFirst) {
            viaSegment = open(h, header(run, shmReplica, 0, a.getToken()), 17);
            awaitPending(h, run, List.of(shmReplica));
          }
          h.client.push(
              run, chunkReplica, 0, NAMES, gradient(0, chunkReplica), DataType.DATA_TYPE_FLOAT32);
          if (!shmFirst) {
            viaSegment = open(h, header(run, shmReplica, 0, a.getToken()), 17);
          }
          TrainResponse answer =
              assertInstanceOf(TrainResponse.class, viaSegment.poll(20, TimeUnit.SECONDS));
          assertEquals(1, answer.getHeader().getParameters().getStep());
          assertEquals(expected, h.fingerprint(run).replace(run, "?"), run);
        }
      }
    }
  }

  /**
   * SYNC, two replicas: the pending replica writes NaN into its segment after its push (the
   * protocol forbids it). The completing push is refused and the run is unchanged.
   */
  @Test
  void sync_pendingSegmentRewrittenAfterItsPush_completingPushRefused() throws Exception {
    try (Harness h = harness()) {
      h.newRun("shm", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a0 = attach(h, "shm", 0);
      AttachSharedMemoryResponse a1 = attach(h, "shm", 1);
      SharedSegment s1 = map(a1);
      s1.writeGradient(gradient(0, 1));
      BlockingQueue<Object> first = open(h, header("shm", 1, 0, a1.getToken()), 17);
      awaitPending(h, "shm", List.of(1));
      String before = values(h, "shm");
      float[][] changed = gradient(0, 1);
      changed[0][3] = Float.NaN;
      s1.writeGradient(changed);

      map(a0).writeGradient(gradient(0, 0));
      Object refused = push(h, header("shm", 0, 0, a0.getToken()), false, 17);
      assertReason(refused, Status.Code.INVALID_ARGUMENT, "SHARED_MEMORY_MISUSE");
      assertEquals(before, values(h, "shm"), "a refused push changed the run");
      assertEquals(List.of(1), h.server.runs().get("shm").pendingReplicas());
      assertEquals(null, first.poll(100, TimeUnit.MILLISECONDS), "replica 1 still waits");
    }
  }

  @Test
  void attach_isIdempotent_andLaysOutTheDocumentedFile() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a = attach(h, "r", 1);
      AttachSharedMemoryResponse b = attach(h, "r", 1);
      assertEquals(a, b);
      assertNotEquals(a.getPath(), attach(h, "r", 0).getPath());
      assertEquals(17, a.getTotalElements());
      assertEquals(64, a.getGradientOffset());
      assertEquals(0, a.getParametersOffset() % 64);
      assertTrue(a.getParametersOffset() >= 64 + 17 * 4);
      // Owner-only: the segment holds the run's parameters.
      assertEquals(
          java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"),
          Files.getPosixFilePermissions(Path.of(a.getPath())));
      assertEquals(
          java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"),
          Files.getPosixFilePermissions(Path.of(a.getProbePath())));
      assertEquals(
          java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"),
          Files.getPosixFilePermissions(Path.of(a.getPath()).getParent()));
      byte[] file = Files.readAllBytes(Path.of(a.getPath()));
      assertEquals(a.getSizeBytes(), file.length);
      assertEquals("RDLSHM01", new String(file, 0, 8, java.nio.charset.StandardCharsets.US_ASCII));
      assertArrayEquals(a.getToken().toByteArray(), java.util.Arrays.copyOfRange(file, 8, 24));
      assertEquals(
          17L,
          java.nio.ByteBuffer.wrap(file, 24, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong());
    }
  }

  /** A replica that cannot read the probe file (another host) never gets a segment allocated. */
  @Test
  void attach_withoutLocalityProof_namesTheProbe_allocatesNothing() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse first = attachWith(h, "r", 0, ByteString.EMPTY);
      assertEquals("", first.getPath());
      assertEquals(32, Files.size(Path.of(first.getProbePath())));
      AttachSharedMemoryResponse wrong = attachWith(h, "r", 0, ByteString.copyFrom(new byte[32]));
      assertEquals("", wrong.getPath());
      try (var files = Files.walk(shm)) {
        assertEquals(
            List.of(),
            files.filter(f -> f.toString().endsWith(".seg")).toList(),
            "no segment without a proof");
      }
      assertTrue(attach(h, "r", 0).getPath().endsWith(".seg"));
    }
  }

  @Test
  void attach_refusals() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      assertRefused(Status.Code.NOT_FOUND, "RUN_NOT_FOUND", () -> attach(h, "nope", 0));
      assertRefused(Status.Code.INVALID_ARGUMENT, "REPLICA_OUT_OF_RANGE", () -> attach(h, "r", 2));
    }
    try (Harness off = new Harness()) {
      off.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      assertRefused(
          Status.Code.FAILED_PRECONDITION, "SHARED_MEMORY_UNAVAILABLE", () -> attach(off, "r", 0));
      // A session falls back to chunks by itself.
      OptimizerClient client = new OptimizerClient(off.channel, ClientOptions.defaults());
      try (ReplicaSession s = new ReplicaSession(client, "r", 0, DataType.DATA_TYPE_FLOAT32)) {
        Parameters y = s.next(s.current(), gradient(0, 0));
        assertEquals(1, y.step());
        assertFalse(s.usingSharedMemory());
      }
    }
  }

  @Test
  void nonFiniteGradient_inSegment_refusedAndCounted_stateUnchanged() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a = attach(h, "r", 0);
      SharedSegment segment = map(a);
      String before = h.fingerprint("r");
      float[][] g = gradient(0, 0);
      g[1][3] = Float.NaN;
      segment.writeGradient(g);
      Object error = pushThroughSegment(h, "r", 0, 0, a.getToken());
      assertReason(error, Status.Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT");
      String message = ((Throwable) error).getMessage();
      assertTrue(message.contains("'b' element 3"), message);
      assertEquals(before, h.fingerprint("r"));
      assertEquals(1.0, h.metrics.refusedCount("NON_FINITE_GRADIENT"));
      // The replica may push a corrected gradient for the same step.
      segment.writeGradient(gradient(0, 0));
      Object answer = pushThroughSegment(h, "r", 0, 0, a.getToken());
      TrainResponse header = assertInstanceOf(TrainResponse.class, answer);
      assertTrue(header.getHeader().getParametersInSharedMemory());
      assertEquals(1, header.getHeader().getParameters().getStep());
      float[][] y = new float[][] {new float[12], new float[5]};
      segment.readParameters(y);
      Parameters served = h.read("r", Sequence.SEQUENCE_TRAIN);
      for (int t = 0; t < y.length; t++) {
        assertArrayEquals(served.values()[t], y[t]);
      }
    }
  }

  @Test
  void segmentPush_misuse_refusedAndStateUnchanged() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a = attach(h, "r", 0);
      AttachSharedMemoryResponse other = attach(h, "r", 1);
      map(a).writeGradient(gradient(0, 0));
      String before = h.fingerprint("r");

      assertReason(
          pushThroughSegment(h, "r", 0, 0, ByteString.copyFrom(new byte[16])),
          Status.Code.FAILED_PRECONDITION,
          "SHARED_MEMORY_UNKNOWN");
      assertReason(
          pushThroughSegment(h, "r", 0, 0, other.getToken()),
          Status.Code.FAILED_PRECONDITION,
          "SHARED_MEMORY_UNKNOWN");
      assertReason(
          push(h, header("r", 0, 0, a.getToken(), DataType.DATA_TYPE_BFLOAT16), false, 17),
          Status.Code.INVALID_ARGUMENT,
          "SHARED_MEMORY_MISUSE");
      assertReason(
          push(h, header("r", 0, 0, a.getToken(), DataType.DATA_TYPE_FLOAT32), true, 17),
          Status.Code.INVALID_ARGUMENT,
          "SHARED_MEMORY_MISUSE");
      assertReason(
          push(h, header("r", 0, 0, a.getToken(), DataType.DATA_TYPE_FLOAT32), false, 16),
          Status.Code.INVALID_ARGUMENT,
          "SIZE_MISMATCH");
      assertReason(
          pushThroughSegment(h, "r", 0, 5, a.getToken()),
          Status.Code.FAILED_PRECONDITION,
          "STEP_IN_FUTURE");
      assertEquals(before, h.fingerprint("r"), "a refused push changed the run");
      assertEquals(List.of(), h.server.runs().get("r").pendingReplicas());
    }
  }

  @Test
  void deleteRun_removesSegments_andOldTokensAreUnknown() throws Exception {
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      AttachSharedMemoryResponse a = attach(h, "r", 0);
      assertTrue(Files.exists(Path.of(a.getPath())));
      h.blocking.deleteRun(DeleteRunRequest.newBuilder().setRunId("r").build());
      assertFalse(Files.exists(Path.of(a.getPath())));
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      assertReason(
          pushThroughSegment(h, "r", 0, 0, a.getToken()),
          Status.Code.FAILED_PRECONDITION,
          "SHARED_MEMORY_UNKNOWN");
      assertNotEquals(a.getToken(), attach(h, "r", 0).getToken());
    }
  }

  @Test
  void shutdownRemovesSegments_startSweepsDeadServersDirectories() throws Exception {
    Path dead = Files.createDirectories(shm.resolve("roadless-optimizer-" + deadPid()));
    Files.writeString(dead.resolve("old.0.1.seg"), "stale");
    Path other = Files.createDirectories(shm.resolve("not-ours"));
    Path segment;
    try (Harness h = harness()) {
      assertFalse(Files.exists(dead), "a dead server's directory is swept at start");
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      segment = Path.of(attach(h, "r", 0).getPath());
      assertTrue(Files.exists(segment));
    }
    assertFalse(Files.exists(segment.getParent()), "shutdown removes the server's directory");
    assertTrue(Files.exists(other), "other files are left alone");
  }

  // --- helpers ---

  /** Waits (up to 10 s) until the run's pending replicas are {@code expected}. */
  private static void awaitPending(Harness h, String run, List<Integer> expected)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!h.server.runs().get(run).pendingReplicas().equals(expected)
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertEquals(expected, h.server.runs().get(run).pendingReplicas());
  }

  /** y, x and z of a run (its fingerprint without the status, which lists pending replicas). */
  private static String values(Harness h, String run) {
    String all = h.fingerprint(run);
    return all.substring(0, all.indexOf("run_id"));
  }

  private static long deadPid() {
    long pid = 4_000_000; // above Linux's pid_max ceiling (2^22): never alive
    while (ProcessHandle.of(pid).isPresent()) {
      pid++;
    }
    return pid;
  }

  private static double sharedMemoryBytes(Harness h, String direction) {
    return h.metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getName().equals("roadless_shared_memory_bytes"))
        .flatMap(m -> m.getDataPoints().stream())
        .filter(p -> p.getLabels().get("direction").equals(direction))
        .mapToDouble(
            p ->
                ((io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot) p)
                    .getValue())
        .sum();
  }

  /** Both calls of AttachSharedMemory: the probe, then the segment with the probe's bytes. */
  private static AttachSharedMemoryResponse attach(Harness h, String run, int replica)
      throws Exception {
    AttachSharedMemoryResponse probe = attachWith(h, run, replica, ByteString.EMPTY);
    return attachWith(
        h, run, replica, ByteString.copyFrom(Files.readAllBytes(Path.of(probe.getProbePath()))));
  }

  private static AttachSharedMemoryResponse attachWith(
      Harness h, String run, int replica, ByteString proof) {
    return h.blocking.attachSharedMemory(
        AttachSharedMemoryRequest.newBuilder()
            .setRunId(run)
            .setReplica(replica)
            .setLocalityProof(proof)
            .build());
  }

  private static SharedSegment map(AttachSharedMemoryResponse a) throws Exception {
    return SharedSegment.open(Path.of(a.getPath()), a.getToken().toByteArray(), SIZES);
  }

  private static GradientHeader header(String run, int replica, long step, ByteString token) {
    return header(run, replica, step, token, DataType.DATA_TYPE_FLOAT32);
  }

  private static GradientHeader header(
      String run, int replica, long step, ByteString token, DataType dtype) {
    return GradientHeader.newBuilder()
        .setRunId(run)
        .setReplica(replica)
        .setStep(step)
        .setDtype(dtype)
        .setSharedMemoryToken(token)
        .build();
  }

  private static Object pushThroughSegment(
      Harness h, String run, int replica, long step, ByteString token) throws Exception {
    return push(h, header(run, replica, step, token, DataType.DATA_TYPE_FLOAT32), false, 17);
  }

  /**
   * Sends one push on a fresh Train stream; returns the answer's header message, or the stream's
   * error.
   */
  private static Object push(Harness h, GradientHeader header, boolean withChunk, long total)
      throws Exception {
    return open(h, header, withChunk, total).poll(20, TimeUnit.SECONDS);
  }

  private static BlockingQueue<Object> open(Harness h, GradientHeader header, long total) {
    return open(h, header, false, total);
  }

  /** Opens a Train stream and sends one push; answers and errors arrive in the queue. */
  private static BlockingQueue<Object> open(
      Harness h, GradientHeader header, boolean withChunk, long total) {
    Inbox<TrainResponse> inbox = new Inbox<>();
    StreamObserver<TrainRequest> out = h.async.train(inbox);
    out.onNext(TrainRequest.newBuilder().setHeader(header).build());
    if (withChunk) {
      out.onNext(
          TrainRequest.newBuilder()
              .setChunk(
                  TensorChunk.newBuilder()
                      .setName("b")
                      .setDtype(DataType.DATA_TYPE_FLOAT32)
                      .setData(ByteString.copyFrom(new byte[20])))
              .build());
    }
    out.onNext(
        TrainRequest.newBuilder()
            .setCommit(StreamCommit.newBuilder().setTotalElements(total))
            .build());
    return inbox.queue;
  }

  /** One PushGradients call naming the segment: header and commit, no chunks. */
  private static PushGradientsResponse pushGradients(Harness h, GradientHeader header)
      throws Exception {
    Inbox<PushGradientsResponse> inbox = new Inbox<>();
    StreamObserver<PushGradientsRequest> out = h.async.pushGradients(inbox);
    out.onNext(PushGradientsRequest.newBuilder().setHeader(header).build());
    out.onNext(
        PushGradientsRequest.newBuilder()
            .setCommit(StreamCommit.newBuilder().setTotalElements(17))
            .build());
    out.onCompleted();
    return assertInstanceOf(PushGradientsResponse.class, inbox.queue.poll(20, TimeUnit.SECONDS));
  }

  private static void assertReason(Object error, Status.Code code, String reason) {
    StatusRuntimeException e = assertInstanceOf(StatusRuntimeException.class, error);
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    assertEquals(reason, OptimizerClient.reason(e), e.getStatus().toString());
  }
}
