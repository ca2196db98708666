package dev.roadless.optimizer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.security.AccessFile;
import dev.roadless.common.security.BearerToken;
import dev.roadless.common.security.DevPki;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.optimizer.client.Channels;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The optimizer server in its own JVM on loopback, two trainer replicas as clients: 50 SYNC steps
 * end at exactly the x the core library computes in one process, also across a kill -9. Every test
 * runs once per transport: tensors in gRPC chunks, and through shared-memory segments.
 */
class CrossProcessTest {
  private static final int STEPS = 50;
  private static final int REPLICAS = 2;

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void sync_twoReplicasAcrossProcesses_equalsCoreLibraryBitForBit(
      boolean sharedMemory, @TempDir Path work) throws Exception {
    int port = ServerProcess.freePort();
    Path shm = Files.createDirectory(work.resolve("shm"));
    try (ServerProcess server =
        ServerProcess.start(port, null, work, "--shared-memory-dir=" + shm)) {
      float[][] x = train("cross", port, null, -1, sharedMemory, null);
      assertBitEqual(SyntheticTraining.referenceX(REPLICAS, STEPS), x);
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void kill9MidRun_withTlsAndTokens_clientsResumeByThemselves_finalXBitIdentical(
      boolean sharedMemory, @TempDir Path work) throws Exception {
    int port = ServerProcess.freePort();
    Path snapshots = Files.createDirectory(work.resolve("snapshots"));
    Path shm = Files.createDirectory(work.resolve("shm"));
    // With TLS and a bearer token: the restarted server reloads the same files.
    Path pki = Files.createDirectory(work.resolve("pki"));
    String token = DevPki.newToken();
    DevPki ca = DevPki.create("kill9-ca", Duration.ofDays(1));
    ca.writeCa(pki.resolve("ca.pem"));
    ca.issue("server", Duration.ofDays(1), pki.resolve("server.pem"), pki.resolve("server.key"));
    Files.writeString(
        pki.resolve("access.txt"),
        "trainer " + AccessFile.sha256Hex(token) + " kill9=trainer" + " kill9=operator\n");
    String[] flags = {
      "--snapshot-every-steps=7",
      "--shared-memory-dir=" + shm,
      "--tls-cert=" + pki.resolve("server.pem"),
      "--tls-key=" + pki.resolve("server.key"),
      "--access-file=" + pki.resolve("access.txt")
    };
    ChannelCredentials credentials =
        CompositeChannelCredentials.create(
            TlsFiles.client(pki.resolve("ca.pem"), null, null, 30_000),
            BearerToken.of(token, false));
    ServerProcess[] server = {ServerProcess.start(port, snapshots, work, flags)};
    try {
      CountDownLatch reached = new CountDownLatch(1);
      float[][][] result = new float[1][][];
      Thread trainer =
          new Thread(
              () -> {
                try {
                  result[0] = train("kill9", port, reached, 24, sharedMemory, credentials);
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      trainer.start();
      assertTrue(reached.await(120, TimeUnit.SECONDS), "training did not reach step 24");
      String firstLog = server[0].log();
      server[0].kill();
      server[0] = ServerProcess.start(port, snapshots, work, flags);
      trainer.join(TimeUnit.MINUTES.toMillis(4));
      assertTrue(result[0] != null, "training did not finish:\n" + firstLog + server[0].log());
      assertTrue(server[0].log().contains("restored runs=1"), server[0].log());
      assertBitEqual(SyntheticTraining.referenceX(REPLICAS, STEPS), result[0]);
      if (sharedMemory) {
        // The killed server's segments were swept by its successor; only the live one's remain.
        try (var dirs = Files.list(shm)) {
          assertEquals(1, dirs.count(), "segment directories left in " + shm);
        }
      }
    } finally {
      server[0].close();
    }
    try (var dirs = Files.list(shm)) {
      assertEquals(0, dirs.count(), "a drained server removes its segments");
    }
  }

  /**
   * kill -9 right after a hyperparameter change at step 3, with the last step snapshot at step 2:
   * the change was on disk before it was acknowledged, so the restarted server has it at step 3.
   */
  @Test
  void kill9AfterHyperparameterChange_restartKeepsTheNewValues(@TempDir Path work)
      throws Exception {
    int port = ServerProcess.freePort();
    Path snapshots = Files.createDirectory(work.resolve("snapshots"));
    String[] flags = {"--snapshot-every-steps=2", "--snapshot-every-seconds=0"};
    ServerProcess server = ServerProcess.start(port, snapshots, work, flags);
    ManagedChannel channel = Channels.plaintext("127.0.0.1", port).build();
    try {
      OptimizerClient client = new OptimizerClient(channel, ClientOptions.defaults());
      client.createRun("hp", SyntheticTraining.spec(1));
      client.uploadInitialValues("hp", SyntheticTraining.NAMES, SyntheticTraining.initial());
      ReplicaSession session = new ReplicaSession(client, "hp", 0, DataType.DATA_TYPE_FLOAT32);
      Parameters y = session.current();
      while (y.step() < 2) {
        y = session.next(y, SyntheticTraining.gradient(y.values(), y.step(), 0));
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (client.status("hp").getSnapshotStep() != 2 && System.nanoTime() < deadline) {
        Thread.sleep(20); // the step snapshot is written in the background; nothing to latch on
      }
      assertEquals(2, client.status("hp").getSnapshotStep(), "the step snapshot");
      y = session.next(y, SyntheticTraining.gradient(y.values(), y.step(), 0));
      client.updateHyperparameters(
          "hp",
          "decay",
          dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder().setLr(0.125).build(),
          3);
      server.kill();
      server = ServerProcess.start(port, snapshots, work, flags);

      var status = client.status("hp");
      var decay =
          status.getGroupsList().stream().filter(g -> g.getName().equals("decay")).findFirst();
      assertTrue(decay.isPresent(), status.toString());
      assertEquals(0.125, decay.get().getLr(), status.toString());
      assertEquals(3, decay.get().getStep(), status.toString());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.kill();
    }
  }

  /** SIGTERM: the drain's own log lines reach the log (the JDK used to reset logging first). */
  @Test
  void sigterm_drainIsLoggedToTheLastLine(@TempDir Path work) throws Exception {
    ServerProcess server = ServerProcess.start(ServerProcess.freePort(), null, work);
    server.close(); // SIGTERM, waits for the exit
    String log = server.log();
    assertTrue(log.contains("shutdown requested; draining"), log);
    String[] lines = log.strip().split("\n");
    assertTrue(lines[lines.length - 1].contains("\"message\":\"stopped\""), log);
  }

  /** Runs both replicas to STEPS and returns x; counts down {@code reached} at {@code at}. */
  private static float[][] train(
      String run,
      int port,
      CountDownLatch reached,
      long at,
      boolean sharedMemory,
      ChannelCredentials credentials)
      throws Exception {
    ManagedChannel channel =
        credentials == null
            ? Channels.plaintext("127.0.0.1", port).build()
            : Channels.secure("localhost:" + port, credentials).build();
    ExecutorService pool = Executors.newFixedThreadPool(REPLICAS);
    try {
      OptimizerClient client =
          new OptimizerClient(channel, ClientOptions.defaults().withSharedMemory(sharedMemory));
      client.createRun(run, SyntheticTraining.spec(REPLICAS));
      client.uploadInitialValues(run, SyntheticTraining.NAMES, SyntheticTraining.initial());
      List<Future<?>> replicas = new ArrayList<>();
      for (int r = 0; r < REPLICAS; r++) {
        int replica = r;
        replicas.add(
            pool.submit(
                () -> {
                  ReplicaSession session =
                      new ReplicaSession(client, run, replica, DataType.DATA_TYPE_FLOAT32);
                  Parameters y = session.current();
                  while (y.step() < STEPS) {
                    if (reached != null && replica == 0 && y.step() == at) {
                      reached.countDown();
                    }
                    y = session.next(y, SyntheticTraining.gradient(y.values(), y.step(), replica));
                    assertEquals(sharedMemory, session.usingSharedMemory(), "transport");
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
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
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
