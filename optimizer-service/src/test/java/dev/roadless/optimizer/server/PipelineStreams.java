package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.Run;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import dev.roadless.proto.optimizer.v1.TrainStepHeader;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Hand-driven Train streams for pipelined steps: pushes cut into chunks of a chosen size, sent in a
 * chosen order, and answers recorded with where each chunk came (before or after the header).
 */
final class PipelineStreams {
  /** Tensors larger than a pipeline block (65,536 elements), and a tiny one. */
  static final List<String> NAMES = List.of("w", "b", "v");

  static final int[] SIZES = {3 * 50_000, 5, 70_001};

  private PipelineStreams() {}

  static RunSpec spec(OptimizerVariant variant, Hyperparameters hp, int replicas) {
    RunSpec.Builder b = RunSpec.newBuilder();
    b.addTensors(TensorDescriptor.newBuilder().setName("w").addShape(3).addShape(50_000));
    b.addTensors(TensorDescriptor.newBuilder().setName("b").addShape(5));
    b.addTensors(TensorDescriptor.newBuilder().setName("v").addShape(70_001));
    return b.addParameterGroups(
            ParameterGroup.newBuilder()
                .setName("all")
                .addAllTensorNames(NAMES)
                .setHyperparameters(hp))
        .setVariant(variant)
        .setReplicas(replicas)
        .setMode(StepMode.STEP_MODE_SYNC)
        .build();
  }

  static float[][] random(long seed, double scale) {
    SplittableRandom r = new SplittableRandom(seed);
    float[][] out = new float[SIZES.length][];
    for (int t = 0; t < SIZES.length; t++) {
      out[t] = new float[SIZES[t]];
      for (int i = 0; i < SIZES[t]; i++) {
        out[t][i] = (float) ((r.nextDouble() * 2 - 1) * scale);
      }
    }
    return out;
  }

  /** A push: header (asking for early parameters or not), chunks of {@code elements}, commit. */
  static List<TrainRequest> push(
      String run, int replica, long step, float[][] g, int elements, boolean early) {
    List<TrainRequest> out = new ArrayList<>();
    out.add(
        TrainRequest.newBuilder()
            .setHeader(
                GradientHeader.newBuilder()
                    .setRunId(run)
                    .setReplica(replica)
                    .setStep(step)
                    .setDtype(DataType.DATA_TYPE_FLOAT32)
                    .setEarlyParameters(early))
            .build());
    long total = 0;
    for (int t = 0; t < g.length; t++) {
      for (int from = 0; from < g[t].length; from += elements) {
        int n = Math.min(elements, g[t].length - from);
        ByteBuffer buf = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(g[t], from, n);
        out.add(
            TrainRequest.newBuilder()
                .setChunk(
                    TensorChunk.newBuilder()
                        .setName(NAMES.get(t))
                        .setElementOffset(from)
                        .setDtype(DataType.DATA_TYPE_FLOAT32)
                        .setData(ByteString.copyFrom(buf.array())))
                .build());
      }
      total += g[t].length;
    }
    out.add(
        TrainRequest.newBuilder()
            .setCommit(StreamCommit.newBuilder().setTotalElements(total))
            .build());
    return out;
  }

  /** One answer: y, the header, and how many chunks came before it. */
  record Answer(TrainStepHeader header, float[][] y, int chunksBeforeHeader, int chunksAfter) {}

  /** One replica's open Train stream. */
  static final class Stream implements StreamObserver<TrainResponse> {
    final StreamObserver<TrainRequest> requests;
    private final List<CompletableFuture<Answer>> answers = new ArrayList<>();
    private int answered;
    private TrainStepHeader header;
    private float[][] early;
    private float[][] y;
    private int before;
    private int after;

    Stream(OptimizerServiceGrpc.OptimizerServiceStub stub) {
      requests = stub.withDeadlineAfter(60, TimeUnit.SECONDS).train(this);
    }

    /** The answer to this stream's {@code n}-th push (0-based). */
    synchronized CompletableFuture<Answer> answer(int n) {
      while (answers.size() <= n) {
        answers.add(new CompletableFuture<>());
      }
      return answers.get(n);
    }

    void send(TrainRequest m) {
      synchronized (requests) {
        requests.onNext(m);
      }
    }

    @Override
    public synchronized void onNext(TrainResponse m) {
      if (m.hasChunk()) {
        float[][] into = header == null ? early() : y;
        TensorChunk c = m.getChunk();
        int t = NAMES.indexOf(c.getName());
        c.getData()
            .asReadOnlyByteBuffer()
            .order(ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer()
            .get(into[t], (int) c.getElementOffset(), c.getData().size() / 4);
        if (header == null) {
          before++;
        } else {
          after++;
        }
      } else if (m.hasHeader()) {
        header = m.getHeader();
        // Early chunks count only when the header says so; otherwise y follows.
        y = header.getParametersSentEarly() ? early() : fresh();
      } else if (m.hasEnd()) {
        answer(answered++).complete(new Answer(header, y, before, after));
        header = null;
        early = null;
        y = null;
        before = 0;
        after = 0;
      }
    }

    private float[][] early() {
      if (early == null) {
        early = fresh();
      }
      return early;
    }

    private static float[][] fresh() {
      float[][] out = new float[SIZES.length][];
      for (int t = 0; t < out.length; t++) {
        out[t] = new float[SIZES[t]];
      }
      return out;
    }

    @Override
    public synchronized void onError(Throwable t) {
      answer(answered).completeExceptionally(t);
    }

    @Override
    public synchronized void onCompleted() {
      answer(answered).completeExceptionally(new IllegalStateException("stream ended"));
    }
  }

  /** Waits (bounded) until the run holds {@code replica}'s push for the current step. */
  static void awaitPending(Run run, int replica) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!run.pendingReplicas().contains(replica)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("replica " + replica + "'s push never arrived");
      }
      Thread.sleep(2);
    }
  }

  /** Steps {@code ref} with the mean of {@code g[replica][tensor]}, as the server must. */
  static void referenceStep(ScheduleFreeOptimizer ref, float[][][] g) {
    Map<String, float[][]> byName = new LinkedHashMap<>();
    for (int t = 0; t < NAMES.size(); t++) {
      float[][] per = new float[g.length][];
      for (int r = 0; r < g.length; r++) {
        per[r] = g[r][t];
      }
      byName.put(NAMES.get(t), per);
    }
    ref.step(byName);
  }

  /** {@code y} is bit for bit {@code ref}'s y. */
  static void assertSameY(ScheduleFreeOptimizer ref, float[][] y, String what) {
    for (int t = 0; t < NAMES.size(); t++) {
      assertArrayEquals(ref.read(Sequence.TRAIN, NAMES.get(t)), y[t], what + " " + NAMES.get(t));
    }
  }

  /** Bit for bit the same state: step count, z, x and both moments of every tensor. */
  static void assertSameState(OptimizerState want, OptimizerState got) {
    assertEquals(want.stepCount(), got.stepCount());
    for (int t = 0; t < want.tensorStates().size(); t++) {
      var a = want.tensorStates().get(t);
      var b = got.tensorStates().get(t);
      assertArrayEquals(a.z(), b.z(), a.name() + ".z");
      assertArrayEquals(a.x(), b.x(), a.name() + ".x");
      assertArrayEquals(a.v(), b.v(), a.name() + ".v");
      assertArrayEquals(a.m(), b.m(), a.name() + ".m");
    }
  }

  /** A run of {@code spec} on {@code h}'s server with the tests' initial values. */
  static Run newRun(Harness h, String id, RunSpec spec) {
    h.client.createRun(id, spec);
    h.client.uploadInitialValues(id, NAMES, random(7, 1));
    return h.server.runs().get(id);
  }

  /** A 2-replica AdamW-SF run (lr 0.01) with the tests' initial values. */
  static Run newRun(Harness h, String id) {
    return newRun(
        h,
        id,
        spec(
            OptimizerVariant.OPTIMIZER_VARIANT_ADAMW,
            Hyperparameters.newBuilder().setLr(0.01).build(),
            2));
  }

  /** An in-process copy of {@code run}'s optimizer, to step beside the server as the reference. */
  static ScheduleFreeOptimizer reference(Run run) {
    return ScheduleFreeOptimizer.fromState(run.optimizer().exportState(), 1);
  }
}
