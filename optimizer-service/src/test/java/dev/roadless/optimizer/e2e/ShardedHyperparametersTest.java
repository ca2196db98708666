package dev.roadless.optimizer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.optimizer.shard.ShardedSession;
import dev.roadless.optimizer.wire.CompositeCumulation;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link ShardedClient#updateHyperparameters} and {@link ShardedSession#updateHyperparameters} on
 * real servers on loopback: a change mid-run reaches every shard for the same step (S = 2 ends bit
 * for bit where S = 1 does), a stale expected step changes nothing and says so, and a retry after a
 * partial change converges.
 */
class ShardedHyperparametersTest {
  private static final int STEPS = 30;
  private static final int CHANGE_AT = 12;
  private static final int REPLICAS = 2;
  private static final Hyperparameters LR = Hyperparameters.newBuilder().setLr(0.003).build();

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
  void changeMidRun_twoShards_bitIdenticalToOneShard() throws Exception {
    float[][] one = train(client(1), "one");
    float[][] two = train(client(2), "two");
    for (int t = 0; t < one.length; t++) {
      int[] e = new int[one[t].length];
      int[] a = new int[two[t].length];
      for (int i = 0; i < e.length; i++) {
        e[i] = Float.floatToRawIntBits(one[t][i]);
        a[i] = Float.floatToRawIntBits(two[t][i]);
      }
      assertArrayEquals(e, a, SyntheticTraining.NAMES.get(t));
    }
    // The change mattered: without it the run ends elsewhere.
    assertNotEquals(
        Float.floatToRawIntBits(SyntheticTraining.referenceX(REPLICAS, STEPS)[0][0]),
        Float.floatToRawIntBits(two[0][0]));
  }

  @Test
  void staleExpectedStep_refusedOnEveryShard_nothingChanged() throws Exception {
    ShardedClient client = client(2);
    client.createRun("stale");
    client.uploadInitialValues("stale", SyntheticTraining.initial());
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> client.updateHyperparameters("stale", "decay", LR, 5));
    assertEquals(Status.Code.ABORTED, e.getStatus().getCode());
    assertEquals("STEP_MISMATCH", OptimizerClient.reason(e));
    assertTrue(e.getStatus().getDescription().contains("no shard changed"), e.getMessage());
    for (RunStatus s : client.statuses("stale")) {
      assertEquals(0.01, s.getGroups(0).getLr());
    }
  }

  @Test
  void partialChange_retryWithSameStep_converges() throws Exception {
    ShardedClient client = client(2);
    client.createRun("partial");
    client.uploadInitialValues("partial", SyntheticTraining.initial());
    // An earlier attempt reached shard 0 only.
    client.shard(0).updateHyperparameters("partial", "decay", LR, 0);
    List<GroupStatus> groups = client.updateHyperparameters("partial", "decay", LR, 0);
    assertEquals(2, groups.size(), "decay is on both shards");
    for (RunStatus s : client.statuses("partial")) {
      assertEquals(
          0.003,
          s.getGroupsList().stream()
              .filter(g -> g.getName().equals("decay"))
              .findFirst()
              .orElseThrow()
              .getLr());
    }
    // A group one shard holds goes to that shard only; an unknown group is NOT_FOUND.
    assertEquals(1, client.updateHyperparameters("partial", "no-decay", LR).size());
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> client.updateHyperparameters("partial", "nope", LR));
    assertEquals("GROUP_NOT_FOUND", OptimizerClient.reason(e));
    assertFalse(e.getStatus().getDescription().isEmpty());
  }

  private ShardedClient client(int shards) throws Exception {
    List<OptimizerClient> clients = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      OptimizerServer server =
          OptimizerServer.builder(
                  CompositeCumulation.plaintextServer(NettyServerBuilder.forPort(0)))
              .threads(1)
              .metrics(Metrics.newIsolated())
              .build()
              .start();
      servers.add(server);
      ManagedChannel channel = Channels.plaintext("127.0.0.1", server.port()).build();
      channels.add(channel);
      clients.add(new OptimizerClient(channel, ClientOptions.defaults().withSharedMemory(false)));
    }
    return new ShardedClient(clients, SyntheticTraining.spec(REPLICAS));
  }

  /** Two SYNC replicas; replica 0 lowers the decay group's lr between steps CHANGE_AT and +1. */
  private static float[][] train(ShardedClient client, String run) throws Exception {
    client.createRun(run);
    client.uploadInitialValues(run, SyntheticTraining.initial());
    ExecutorService pool = Executors.newFixedThreadPool(REPLICAS);
    try {
      List<Future<?>> replicas = new ArrayList<>();
      for (int r = 0; r < REPLICAS; r++) {
        int replica = r;
        replicas.add(
            pool.submit(
                () -> {
                  try (ShardedSession session =
                      client.session(run, replica, DataType.DATA_TYPE_FLOAT32, 4)) {
                    Parameters y = session.current();
                    while (y.step() < STEPS) {
                      if (replica == 0 && y.step() == CHANGE_AT) {
                        session.updateHyperparameters(y, "decay", LR);
                      }
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
      Parameters x = client.parameters(run, Sequence.SEQUENCE_EVAL, 0);
      assertEquals(STEPS, x.step());
      return x.values();
    } finally {
      pool.shutdownNow();
    }
  }
}
