package dev.roadless.optimizer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.ClientStreams;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.optimizer.shard.ShardedSession;
import dev.roadless.optimizer.shard.ShardedState;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.optimizer.wire.CompositeCumulation;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A sharded run's state gathered into one state and cut into any number of shards: the state
 * gathered from 3 shards equals one server's after the same steps, and restoring it 3 -> 1 or 1 ->
 * 3 and training on ends at exactly the x of an uninterrupted run.
 */
class ShardedStateTest {
  private static final int REPLICAS = 2;
  private static final int STEPS = 50;
  private static final int CUT = 20;
  private static final ClientOptions OPTIONS = ClientOptions.defaults().withSharedMemory(false);

  private final List<OptimizerServer> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void stop() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (OptimizerServer s : servers) {
      s.shutdown(0);
    }
  }

  @Test
  void gatherFromThreeShards_equalsOneServersState() throws Exception {
    List<ManagedChannel> three = start(3);
    List<ManagedChannel> one = start(1);
    train(client(three), "run", true, CUT);
    train(client(one), "run", true, CUT);
    byte[] gathered = gather(three, "run");
    byte[] single = export(one.get(0), "run");
    StateHeader g = StateCodec.reader(new ByteArrayInputStream(gathered), gathered.length).header();
    StateHeader s = StateCodec.reader(new ByteArrayInputStream(single), single.length).header();
    assertEquals(s.getSpec(), g.getSpec());
    assertEquals(s.getGroupsList(), g.getGroupsList());
    assertEquals(s.getSlotsList(), g.getSlotsList());
    assertEquals(arrays(single), arrays(gathered));
  }

  @Test
  void restoreThreeShardsOntoOne_thenTrainOn_bitIdentical() throws Exception {
    List<ManagedChannel> three = start(3);
    train(client(three), "run", true, CUT);
    byte[] whole = gather(three, "run");
    List<ManagedChannel> one = start(1);
    importState(one.get(0), whole, "resumed");
    float[][] x = train(client(one), "resumed", false, STEPS);
    assertBitEqual(SyntheticTraining.referenceX(REPLICAS, STEPS), x);
  }

  @Test
  void restoreOneOntoThreeShards_thenTrainOn_bitIdentical() throws Exception {
    List<ManagedChannel> one = start(1);
    train(client(one), "run", true, CUT);
    byte[] whole = export(one.get(0), "run");
    List<ByteArrayOutputStream> parts = new ArrayList<>();
    List<StateWriter> writers = new ArrayList<>();
    for (int s = 0; s < 3; s++) {
      parts.add(new ByteArrayOutputStream());
      writers.add(StateCodec.writer(parts.get(s)));
    }
    ShardedState.split(StateCodec.reader(new ByteArrayInputStream(whole), whole.length), writers);
    List<ManagedChannel> three = start(3);
    for (int s = 0; s < 3; s++) {
      importState(three.get(s), parts.get(s).toByteArray(), "resumed");
    }
    float[][] x = train(client(three), "resumed", false, STEPS);
    assertBitEqual(SyntheticTraining.referenceX(REPLICAS, STEPS), x);
  }

  @Test
  void gather_shardsAtDifferentSteps_refused() throws Exception {
    List<ManagedChannel> two = start(2);
    train(client(two), "a", true, 3);
    List<ManagedChannel> other = start(2);
    train(client(other), "a", true, 4);
    List<StateReader> readers = new ArrayList<>();
    for (ManagedChannel c : List.of(two.get(0), other.get(1))) {
      byte[] b = export(c, "a");
      readers.add(StateCodec.reader(new ByteArrayInputStream(b), b.length));
    }
    StateWriter out = StateCodec.writer(new ByteArrayOutputStream());
    assertThrows(ShardedState.StepsDiffer.class, () -> ShardedState.gather(readers, out));
  }

  private List<ManagedChannel> start(int shards) throws IOException {
    List<ManagedChannel> out = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      OptimizerServer server =
          OptimizerServer.builder(
                  CompositeCumulation.plaintextServer(NettyServerBuilder.forPort(0)))
              .threads(1)
              .metrics(Metrics.newIsolated())
              .build()
              .start();
      servers.add(server);
      out.add(Channels.plaintext("127.0.0.1", server.port()).build());
    }
    channels.addAll(out);
    return out;
  }

  private static ShardedClient client(List<ManagedChannel> shards) {
    List<OptimizerClient> clients = new ArrayList<>();
    shards.forEach(c -> clients.add(new OptimizerClient(c, OPTIONS)));
    return new ShardedClient(clients, SyntheticTraining.spec(REPLICAS));
  }

  private static byte[] gather(List<ManagedChannel> shards, String run) throws IOException {
    List<StateReader> readers = new ArrayList<>();
    for (ManagedChannel c : shards) {
      byte[] b = export(c, run);
      readers.add(StateCodec.reader(new ByteArrayInputStream(b), b.length));
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ShardedState.gather(readers, StateCodec.writer(out));
    return out.toByteArray();
  }

  private static byte[] export(ManagedChannel channel, String run) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    StateWriter w = StateCodec.writer(out);
    Iterator<ExportStateResponse> it =
        OptimizerServiceGrpc.newBlockingStub(channel)
            .exportState(ExportStateRequest.newBuilder().setRunId(run).build());
    while (it.hasNext()) {
      w.write(it.next());
    }
    return out.toByteArray();
  }

  private static void importState(ManagedChannel channel, byte[] state, String run)
      throws IOException {
    StateReader r = StateCodec.reader(new ByteArrayInputStream(state), state.length);
    List<ImportStateRequest> requests = new ArrayList<>();
    ExportStateResponse m;
    while ((m = r.next()) != null) {
      requests.add(
          switch (m.getItemCase()) {
            case HEADER ->
                ImportStateRequest.newBuilder()
                    .setHeader(m.getHeader().toBuilder().setRunId(run))
                    .build();
            case CHUNK -> ImportStateRequest.newBuilder().setChunk(m.getChunk()).build();
            default ->
                ImportStateRequest.newBuilder()
                    .setCommit(
                        StreamCommit.newBuilder().setTotalElements(m.getEnd().getTotalElements()))
                    .build();
          });
    }
    ClientStreams.send(OptimizerServiceGrpc.newStub(channel)::importState, requests.iterator());
  }

  /** Every slot of every tensor, decoded: "slot tensor" -> float bits. */
  private static Map<String, List<Integer>> arrays(byte[] state) throws IOException {
    StateReader r = StateCodec.reader(new ByteArrayInputStream(state), state.length);
    Map<String, TreeMap<Long, int[]>> parts = new TreeMap<>();
    ExportStateResponse m;
    while ((m = r.next()) != null) {
      if (m.hasChunk()) {
        var c = m.getChunk().getChunk();
        ByteBuffer b = c.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int[] bits = new int[b.remaining() / 4];
        b.asIntBuffer().get(bits);
        parts
            .computeIfAbsent(m.getChunk().getSlot() + " " + c.getName(), k -> new TreeMap<>())
            .put(c.getElementOffset(), bits);
      }
    }
    Map<String, List<Integer>> out = new TreeMap<>();
    parts.forEach(
        (k, v) -> {
          List<Integer> all = new ArrayList<>();
          v.values().forEach(a -> java.util.Arrays.stream(a).forEach(all::add));
          out.put(k, all);
        });
    return out;
  }

  /** Trains both replicas from the run's current step to {@code until}; returns x. */
  private static float[][] train(ShardedClient client, String run, boolean create, int until)
      throws Exception {
    if (create) {
      client.createRun(run);
      client.uploadInitialValues(run, SyntheticTraining.initial());
    }
    ExecutorService pool = Executors.newFixedThreadPool(REPLICAS);
    try {
      List<Future<?>> replicas = new ArrayList<>();
      for (int r = 0; r < REPLICAS; r++) {
        int replica = r;
        replicas.add(
            pool.submit(
                () -> {
                  try (ShardedSession session =
                      client.session(run, replica, DataType.DATA_TYPE_FLOAT32, 0)) {
                    Parameters y = session.current();
                    while (y.step() < until) {
                      y =
                          session.next(
                              y, SyntheticTraining.gradient(y.values(), y.step(), replica));
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> f : replicas) {
        f.get(5, TimeUnit.MINUTES);
      }
    } finally {
      pool.shutdownNow();
    }
    Parameters x = client.parameters(run, Sequence.SEQUENCE_EVAL, 0);
    assertEquals(until, x.step());
    return x.values();
  }

  private static void assertBitEqual(float[][] expected, float[][] actual) {
    for (int t = 0; t < expected.length; t++) {
      int[] e = new int[expected[t].length];
      int[] a = new int[actual[t].length];
      for (int i = 0; i < e.length; i++) {
        e[i] = Float.floatToRawIntBits(expected[t][i]);
        a[i] = Float.floatToRawIntBits(actual[t][i]);
      }
      assertArrayEquals(e, a, SyntheticTraining.NAMES.get(t));
    }
  }
}
