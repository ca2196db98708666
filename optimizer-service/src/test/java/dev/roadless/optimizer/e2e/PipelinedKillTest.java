package dev.roadless.optimizer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StateSlot;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.ManagedChannel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * kill -9 of the server process in the middle of a pipelined SYNC step (early parameters on, two
 * replicas, five tensors of 1.09M elements in all, each ending in a partial 65,536-element block,
 * one of them a block of one element), restarted on the same snapshot directory: the replicas
 * resume on their own (their {@link ReplicaSession}s push again, or start over from the restored
 * step), and the run ends bit for bit where the core optimizer stepped with the same means ends (x,
 * z, moments, y, step count).
 *
 * <p>Where the push got is observed on the wire, not by a hook in the server: each replica talks
 * through its own {@link GatedProxy}, which can stop the replica's bytes at a mark and counts the
 * early y that comes back. Between the kill and the replicas' return the operator changes the
 * learning rate at the restored step, so the y of every step from there on differs from what the
 * killed server previewed: a replica that trained on an early y the killed server never committed
 * would be caught by the check that every y a replica trained on is the committed y of its step.
 */
class PipelinedKillTest {
  private static final String RUN = "pipelined-kill";
  private static final List<String> NAMES =
      List.of("enc.weight", "dec.weight", "enc.bias", "norm.scale", "head.bias");
  private static final int[][] SHAPES = {{997, 601}, {1031, 263}, {150_001}, {65_537}, {3}};
  private static final int REPLICAS = 2;
  private static final int STEPS = 8;

  /** The step whose push (or, for {@link Point#AFTER_COMMIT}, whose answer) the kill interrupts. */
  private static final int KILL_AT = 5;

  private static final String[] FLAGS = {"--snapshot-every-steps=4", "--snapshot-every-seconds=0"};
  private static final double LR = 0.01;
  private static final double LR_AFTER_RESTART = 0.02;

  /** One early y block on the wire: 65,536 float32 values. */
  private static final long BLOCK_BYTES = 4L << 16;

  /** Where replica pushes are stopped: a bit under three of their 1 MiB chunks. */
  private static final long PART_OF_A_PUSH = 3_000_000;

  private static final float[][] TARGET = noise(new SplittableRandom(43), 1f);

  enum Point {
    /** Replica 0 has sent part of its push, replica 1 nothing: no block is complete. */
    CHUNKS_BEFORE_COMMIT,
    /** Replica 0 has sent all, replica 1 part: early y of its blocks is streaming to both. */
    EARLY_Y_STREAMING,
    /** Both replicas have their answer (y of the next step); that step has no snapshot. */
    AFTER_COMMIT
  }

  /** A y a replica computed a gradient at, and which server process answered it. */
  private record Used(int replica, long step, int generation, String digest) {}

  @ParameterizedTest
  @EnumSource(Point.class)
  void kill9MidPipelinedStep_replicasResume_stateAndEveryTrainedYBitIdentical(
      Point point, @TempDir Path work) throws Exception {
    int port = ServerProcess.freePort();
    Path snapshots = Files.createDirectory(work.resolve("snapshots"));
    ServerProcess[] server = {ServerProcess.start(port, snapshots, work, FLAGS)};
    GatedProxy[] proxies = new GatedProxy[REPLICAS];
    ManagedChannel[] channels = new ManagedChannel[REPLICAS];
    ExecutorService pool = Executors.newFixedThreadPool(REPLICAS);
    List<Used> used = java.util.Collections.synchronizedList(new ArrayList<>());
    java.util.concurrent.atomic.AtomicInteger generation =
        new java.util.concurrent.atomic.AtomicInteger();
    CountDownLatch armed = new CountDownLatch(REPLICAS);
    CountDownLatch answered = new CountDownLatch(REPLICAS);
    CountDownLatch resume = new CountDownLatch(1);
    long[] downAtArm = new long[REPLICAS];
    try {
      operator(port, c -> c.createRun(RUN, spec()));
      operator(port, c -> c.uploadInitialValues(RUN, NAMES, noise(new SplittableRandom(42), 1f)));
      List<Future<?>> replicas = new ArrayList<>();
      for (int r = 0; r < REPLICAS; r++) {
        int replica = r;
        proxies[r] = new GatedProxy(port);
        channels[r] = Channels.plaintext("127.0.0.1", proxies[r].port()).build();
        OptimizerClient client =
            new OptimizerClient(
                channels[r],
                ClientOptions.defaults().withSharedMemory(false).withEarlyParameters(true));
        replicas.add(
            pool.submit(
                () -> {
                  // Replica 0 has the answers written into its arrays (early chunks included).
                  ReplicaSession session =
                      new ReplicaSession(
                          client, RUN, replica, DataType.DATA_TYPE_FLOAT32, replica == 0);
                  Parameters y = session.current();
                  boolean interrupted = false;
                  while (true) {
                    used.add(new Used(replica, y.step(), generation.get(), digest(y.values())));
                    if (y.step() == KILL_AT + 1 && point == Point.AFTER_COMMIT && !interrupted) {
                      interrupted = true;
                      answered.countDown();
                      resume.await();
                    }
                    if (y.step() >= STEPS) {
                      return null;
                    }
                    float[][] g = gradient(y.values(), y.step(), replica);
                    if (y.step() == KILL_AT && point != Point.AFTER_COMMIT && !interrupted) {
                      interrupted = true;
                      downAtArm[replica] = proxies[replica].down();
                      long stop = stopAfter(point, replica);
                      if (stop >= 0) {
                        proxies[replica].stopUpAfter(stop);
                      }
                      armed.countDown();
                    }
                    y = session.next(y, g);
                    assertTrue(!session.usingSharedMemory(), "chunks, not shared memory");
                  }
                }));
      }

      if (point == Point.AFTER_COMMIT) {
        assertTrue(answered.await(60, TimeUnit.SECONDS), "step " + KILL_AT + " not answered");
      } else {
        assertTrue(armed.await(60, TimeUnit.SECONDS), "step " + KILL_AT + " not reached");
        for (int r = 0; r < REPLICAS; r++) {
          if (stopAfter(point, r) >= 0) {
            proxies[r].awaitUpStopped(60_000);
          }
        }
        if (point == Point.EARLY_Y_STREAMING) {
          // Early blocks reach both replicas while replica 1's push is stopped (replica 1's window
          // updates are stopped with it, so the server may send it only what its window allows).
          awaitTrue(
              () ->
                  proxies[0].down() - downAtArm[0] >= 4 * BLOCK_BYTES
                      && proxies[1].down() - downAtArm[1] >= BLOCK_BYTES,
              "early y of step " + KILL_AT + " did not stream");
        } else {
          for (int r = 0; r < REPLICAS; r++) {
            assertTrue(
                proxies[r].down() - downAtArm[r] < BLOCK_BYTES,
                "y streamed before replica 1 sent any block");
          }
        }
      }
      awaitTrue(
          () -> operator(port, c -> c.status(RUN).getSnapshotStep()) > 0,
          "no snapshot was written");
      for (GatedProxy p : proxies) {
        p.hold(); // the replicas' new connections wait until the operator is done
      }
      String firstLog = server[0].log();
      server[0].kill();
      generation.set(1);
      server[0] = ServerProcess.start(port, snapshots, work, FLAGS);
      long restored = operator(port, c -> c.status(RUN).getStep());
      assertTrue(server[0].log().contains("restored runs=1"), server[0].log());
      // Snapshots every 4 steps: none holds the commit of step KILL_AT (nor its push).
      assertTrue(restored > 0 && restored <= KILL_AT, "restored at step " + restored);
      operator(
          port,
          c ->
              c.updateHyperparameters(
                  RUN,
                  "decay",
                  dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder()
                      .setLr(LR_AFTER_RESTART)
                      .build(),
                  restored));
      for (GatedProxy p : proxies) {
        p.release();
      }
      resume.countDown();
      for (Future<?> f : replicas) {
        try {
          f.get(2, TimeUnit.MINUTES);
        } catch (java.util.concurrent.TimeoutException e) {
          throw new AssertionError("replicas did not finish:\n" + firstLog + server[0].log(), e);
        }
      }

      // The reference, once to the restored step, then on as the killed server went (to the last
      // y it answered) and as its successor went (the new learning rate from the restored step).
      try (ScheduleFreeOptimizer before = reference()) {
        List<String> yBefore = new ArrayList<>();
        train(before, 0, restored, -1, yBefore);
        List<String> yAfter = new ArrayList<>(yBefore.subList(0, (int) restored));
        try (ScheduleFreeOptimizer after =
            ScheduleFreeOptimizer.fromState(before.exportState(), 1)) {
          yBefore.remove(yBefore.size() - 1);
          train(before, restored, KILL_AT + 1, -1, yBefore);
          train(after, restored, STEPS, restored, yAfter);
          for (Used u : used) {
            List<String> committed = u.generation() == 0 ? yBefore : yAfter;
            assertEquals(
                committed.get((int) u.step()),
                u.digest(),
                "replica "
                    + u.replica()
                    + " trained on a y of step "
                    + u.step()
                    + " (server "
                    + u.generation()
                    + ") that is not the committed one");
          }
          long replayed = used.stream().filter(u -> u.generation() == 1).count();
          assertTrue(replayed >= REPLICAS * (STEPS - KILL_AT), "steps after the restart: " + used);
          assertState(after, port);
        }
      }
    } finally {
      pool.shutdownNow();
      for (int r = 0; r < REPLICAS; r++) {
        if (channels[r] != null) {
          channels[r].shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (proxies[r] != null) {
          proxies[r].close();
        }
      }
      server[0].close();
    }
  }

  /**
   * How many more bytes replica {@code replica}'s proxy lets through once the replica is about to
   * push step {@link #KILL_AT}; -1 for no stop.
   */
  private static long stopAfter(Point point, int replica) {
    return switch (point) {
      case CHUNKS_BEFORE_COMMIT -> replica == 0 ? PART_OF_A_PUSH : 0;
      case EARLY_Y_STREAMING -> replica == 1 ? PART_OF_A_PUSH : -1;
      case AFTER_COMMIT -> -1;
    };
  }

  /** The server's state, y and step count equal the reference's bit for bit. */
  private static void assertState(ScheduleFreeOptimizer ref, int port) throws Exception {
    Map<StateSlot, Map<String, int[]>> server = exportedState(port);
    OptimizerState want = ref.exportState();
    assertEquals(STEPS, want.stepCount());
    assertEquals(STEPS, (long) operator(port, c -> c.status(RUN).getStep()));
    for (OptimizerState.TensorState t : want.tensorStates()) {
      assertArrayEquals(bits(t.z()), server.get(StateSlot.STATE_SLOT_Z).get(t.name()), t.name());
      assertArrayEquals(bits(t.x()), server.get(StateSlot.STATE_SLOT_X).get(t.name()), t.name());
      assertArrayEquals(
          bits(t.v()), server.get(StateSlot.STATE_SLOT_EXP_AVG_SQ).get(t.name()), t.name());
      if (t.m() != null) {
        assertArrayEquals(
            bits(t.m()), server.get(StateSlot.STATE_SLOT_EXP_AVG).get(t.name()), t.name());
      }
    }
    Parameters y =
        operator(
            port,
            c -> c.parameters(RUN, dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_TRAIN, 0));
    assertEquals(STEPS, y.step());
    Parameters x =
        operator(
            port,
            c -> c.parameters(RUN, dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_EVAL, 0));
    for (int t = 0; t < NAMES.size(); t++) {
      assertArrayEquals(bits(ref.read(Sequence.TRAIN, NAMES.get(t))), bits(y.values()[t]), "y");
      assertArrayEquals(bits(ref.read(Sequence.EVAL, NAMES.get(t))), bits(x.values()[t]), "x");
    }
  }

  /** The run's exported state: slot, then tensor, then its values' bits. */
  private static Map<StateSlot, Map<String, int[]>> exportedState(int port) throws Exception {
    ManagedChannel channel = Channels.plaintext("127.0.0.1", port).build();
    try {
      Map<StateSlot, Map<String, int[]>> out = new EnumMap<>(StateSlot.class);
      Iterator<ExportStateResponse> it =
          OptimizerServiceGrpc.newBlockingStub(channel)
              .exportState(ExportStateRequest.newBuilder().setRunId(RUN).build());
      while (it.hasNext()) {
        ExportStateResponse m = it.next();
        if (!m.hasChunk()) {
          continue;
        }
        var c = m.getChunk().getChunk();
        int[] all =
            out.computeIfAbsent(m.getChunk().getSlot(), s -> new HashMap<>())
                .computeIfAbsent(c.getName(), n -> new int[size(NAMES.indexOf(n))]);
        ByteBuffer b = c.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().get(all, (int) c.getElementOffset(), b.remaining() / 4);
      }
      return out;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * Steps {@code opt} from step {@code from} to {@code to} with the replicas' mean gradients, the
   * learning rate of group "decay" changed at step {@code changeAt} (none when negative), and adds
   * the digest of y at every step {@code from..to} to {@code ys}.
   */
  private static void train(
      ScheduleFreeOptimizer opt, long from, long to, long changeAt, List<String> ys) {
    for (long k = from; ; k++) {
      float[][] y = new float[NAMES.size()][];
      for (int t = 0; t < y.length; t++) {
        y[t] = opt.read(Sequence.TRAIN, NAMES.get(t));
      }
      ys.add(digest(y));
      if (k == to) {
        return;
      }
      if (k == changeAt) {
        opt.setHyperparameters(
            "decay", opt.hyperparameters("decay").toBuilder().lr(LR_AFTER_RESTART).build());
      }
      float[][][] perReplica = new float[REPLICAS][][];
      for (int r = 0; r < REPLICAS; r++) {
        perReplica[r] = gradient(y, k, r);
      }
      opt.step(SyntheticTraining.byTensor(NAMES, perReplica));
    }
  }

  /** The run as the server has it, in one process: weights decay, the 1-D tensors do not. */
  private static ScheduleFreeOptimizer reference() {
    Hyperparameters base =
        Hyperparameters.defaults(Variant.ADAMW).toBuilder().lr(LR).warmupSteps(3).build();
    List<TensorSpec> tensors = new ArrayList<>();
    for (int t = 0; t < NAMES.size(); t++) {
      tensors.add(new TensorSpec(NAMES.get(t), SHAPES[t]));
    }
    ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.ADAMW,
            tensors,
            List.of(
                new GroupSpec(
                    "decay", NAMES.subList(0, 2), base.toBuilder().weightDecay(0.01).build()),
                new GroupSpec("no-decay", NAMES.subList(2, NAMES.size()), base)),
            1);
    opt.setInitialValues(noise(new SplittableRandom(42), 1f));
    return opt;
  }

  private static RunSpec spec() {
    var base =
        dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder().setLr(LR).setWarmupSteps(3);
    RunSpec.Builder b =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(REPLICAS)
            .setMode(StepMode.STEP_MODE_SYNC)
            .addParameterGroups(
                ParameterGroup.newBuilder()
                    .setName("decay")
                    .addAllTensorNames(NAMES.subList(0, 2))
                    .setHyperparameters(base.clone().setWeightDecay(0.01)))
            .addParameterGroups(
                ParameterGroup.newBuilder()
                    .setName("no-decay")
                    .addAllTensorNames(NAMES.subList(2, NAMES.size()))
                    .setHyperparameters(base));
    for (int t = 0; t < NAMES.size(); t++) {
      TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(NAMES.get(t));
      for (int dim : SHAPES[t]) {
        d.addShape(dim);
      }
      b.addTensors(d);
    }
    return b.build();
  }

  /** Replica r's gradient at step k: noise of (k, r) plus a pull of y towards a target. */
  private static float[][] gradient(float[][] y, long step, int replica) {
    float[][] g = noise(new SplittableRandom(1_000_003L * step + replica), 0.1f);
    for (int t = 0; t < g.length; t++) {
      for (int i = 0; i < g[t].length; i++) {
        g[t][i] += 0.5f * (y[t][i] - TARGET[t][i]);
      }
    }
    return g;
  }

  private static float[][] noise(SplittableRandom r, float scale) {
    float[][] out = new float[SHAPES.length][];
    for (int t = 0; t < SHAPES.length; t++) {
      out[t] = new float[size(t)];
      for (int i = 0; i < out[t].length; i++) {
        out[t][i] = (float) (scale * r.nextGaussian());
      }
    }
    return out;
  }

  private static int size(int tensor) {
    int n = 1;
    for (int d : SHAPES[tensor]) {
      n *= d;
    }
    return n;
  }

  /** SHA-256 of the values' bits, tensor after tensor. */
  private static String digest(float[][] values) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (float[] v : values) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        md.update(b);
      }
      return java.util.HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static int[] bits(float[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Float.floatToRawIntBits(v[i]);
    }
    return out;
  }

  /** A call on a fresh direct channel to the server (not through a replica's proxy). */
  private static <T> T operator(int port, java.util.function.Function<OptimizerClient, T> call)
      throws InterruptedException {
    ManagedChannel channel = Channels.plaintext("127.0.0.1", port).build();
    try {
      return call.apply(new OptimizerClient(channel, ClientOptions.defaults()));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** A condition that may call the server. */
  private interface Check {
    boolean holds() throws Exception;
  }

  private static void awaitTrue(Check condition, String what) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!condition.holds()) {
      assertTrue(System.nanoTime() < deadline, what);
      Thread.sleep(5); // bytes another process sends; nothing to latch on
    }
  }
}
