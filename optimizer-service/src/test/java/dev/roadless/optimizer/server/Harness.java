package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.function.Executable;

/** An optimizer server on the in-process transport, with a client and small test runs. */
final class Harness implements AutoCloseable {
  static final List<String> NAMES = List.of("w", "b");
  static final int[] SIZES = {12, 5};

  final OptimizerServer server;
  final ManagedChannel channel;
  final OptimizerClient client;
  final OptimizerServiceGrpc.OptimizerServiceStub async;
  final OptimizerServiceGrpc.OptimizerServiceBlockingStub blocking;
  final Metrics metrics = Metrics.newIsolated();

  Harness() throws Exception {
    this(null, 4 << 20);
  }

  Harness(Path snapshotDir, int maxMessageBytes) throws Exception {
    this(snapshotDir, maxMessageBytes, false);
  }

  /**
   * With {@code loopback}, a real HTTP/2 server on 127.0.0.1 with the production channel settings
   * (the in-process transport does not enforce message limits nor use the zero-copy buffers).
   */
  Harness(Path snapshotDir, int maxMessageBytes, boolean loopback) throws Exception {
    this(snapshotDir, maxMessageBytes, loopback, null);
  }

  /** As above, with shared-memory segments in {@code sharedMemoryDir} (null: turned off). */
  Harness(Path snapshotDir, int maxMessageBytes, boolean loopback, Path sharedMemoryDir)
      throws Exception {
    this(snapshotDir, maxMessageBytes, loopback, sharedMemoryDir, b -> {});
  }

  /** As above, with further server settings (memory budget, idle timeout, ...). */
  Harness(
      Path snapshotDir,
      int maxMessageBytes,
      boolean loopback,
      Path sharedMemoryDir,
      java.util.function.Consumer<OptimizerServer.Builder> settings)
      throws Exception {
    String name = InProcessServerBuilder.generateName();
    io.grpc.ServerBuilder<?> builder =
        loopback
            ? dev.roadless.optimizer.wire.SocketTuning.server(
                dev.roadless.optimizer.wire.CompositeCumulation.plaintextServer(
                    io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forPort(0)))
            : InProcessServerBuilder.forName(name);
    OptimizerServer.Builder b =
        OptimizerServer.builder(builder)
            .maxMessageBytes(maxMessageBytes)
            .threads(2)
            .snapshotStore(snapshotDir == null ? null : new SnapshotStore(snapshotDir))
            .metrics(metrics)
            .sharedMemoryDir(sharedMemoryDir);
    settings.accept(b);
    server = b.build().start();
    channel =
        loopback
            ? dev.roadless.optimizer.client.Channels.plaintext("127.0.0.1", server.port()).build()
            : InProcessChannelBuilder.forName(name).build();
    client =
        new OptimizerClient(
            channel,
            ClientOptions.defaults().withMaxAttempts(1).withCallDeadline(Duration.ofSeconds(20)));
    async = OptimizerServiceGrpc.newStub(channel);
    blocking = OptimizerServiceGrpc.newBlockingStub(channel);
  }

  /** SGD-SF over a [3,4] weight and a [5] bias, one group. */
  static RunSpec spec(int replicas, StepMode mode, long maxStaleness) {
    return RunSpec.newBuilder()
        .addTensors(TensorDescriptor.newBuilder().setName("w").addShape(3).addShape(4))
        .addTensors(TensorDescriptor.newBuilder().setName("b").addShape(5))
        .addParameterGroups(
            ParameterGroup.newBuilder()
                .setName("all")
                .addAllTensorNames(NAMES)
                .setHyperparameters(
                    Hyperparameters.newBuilder().setLr(0.1).setBeta(0.9).setWarmupSteps(3)))
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_SGD)
        .setReplicas(replicas)
        .setMode(mode)
        .setMaxStaleness(maxStaleness)
        .build();
  }

  static float[][] random(long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[][] out = new float[SIZES.length][];
    for (int t = 0; t < SIZES.length; t++) {
      out[t] = new float[SIZES[t]];
      for (int i = 0; i < SIZES[t]; i++) {
        out[t][i] = (float) (r.nextDouble() * 2 - 1);
      }
    }
    return out;
  }

  /** Creates and initializes a run. */
  void newRun(String id, RunSpec spec) {
    client.createRun(id, spec);
    client.uploadInitialValues(id, NAMES, random(7));
  }

  Parameters read(String id, Sequence sequence) {
    return client.parameters(id, sequence, 0);
  }

  /** Everything observable of a run: y, x, z and its status (without the refusal counters). */
  String fingerprint(String id) {
    StringBuilder sb = new StringBuilder();
    for (Sequence s :
        List.of(Sequence.SEQUENCE_TRAIN, Sequence.SEQUENCE_EVAL, Sequence.SEQUENCE_BASE)) {
      Parameters p = read(id, s);
      sb.append(s).append('@').append(p.step());
      for (float[] v : p.values()) {
        for (float f : v) {
          sb.append(',').append(Integer.toHexString(Float.floatToRawIntBits(f)));
        }
      }
    }
    // What the run is, not when the server last wrote it to disk.
    sb.append(
        client.status(id).toBuilder()
            .clearRefusedPushes()
            .clearSnapshotStep()
            .clearSnapshotError()
            .build());
    return sb.toString();
  }

  /** Asserts a call fails with the code and ErrorInfo reason. */
  static StatusRuntimeException assertRefused(Status.Code code, String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    assertEquals(reason, OptimizerClient.reason(e), e.getStatus().toString());
    return e;
  }

  @Override
  public void close() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdown(1);
  }
}
