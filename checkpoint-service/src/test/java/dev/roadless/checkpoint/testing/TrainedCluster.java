package dev.roadless.checkpoint.testing;

import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.ModelSpec;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.trainer.service.Trainer;
import dev.roadless.trainer.service.TrainerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Real servers on loopback: one optimizer and two trainer replicas that train the MLP on the
 * bundled MNIST digits with AdamW-SF (as the trainer's own end-to-end test does) until {@link
 * #STEPS}, and then stop. Checkpoint servers are made on top of it with {@link #checkpointServer}.
 */
public final class TrainedCluster implements AutoCloseable {
  public static final String RUN = "mnist-mlp";
  public static final int STEPS = 300;
  public static final String MLP =
      "fc1=Linear(784,256,bias=False) -> bn1=BatchNorm1d(256) -> relu=ReLU -> fc2=Linear(256,10)";

  public final OptimizerServer optimizer;
  public final OptimizerClient optimizerClient;
  public final List<TrainerServiceGrpc.TrainerServiceBlockingStub> trainerStubs = new ArrayList<>();
  public final List<String> trainerTargets = new ArrayList<>();

  /** GetParameters calls the optimizer has received: how often x (or y, z) crossed the network. */
  public final AtomicInteger parameterReads = new AtomicInteger();

  private final List<TrainerServer> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final List<CheckpointServer> checkpointServers = new ArrayList<>();
  private final ExecutorService executor = Executors.newCachedThreadPool();

  public TrainedCluster() throws Exception {
    optimizer =
        OptimizerServer.builder(
                Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
                    .intercept(countParameterReads()))
            .build()
            .start();
    optimizerClient = new OptimizerClient(channel(optimizer.port()), ClientOptions.defaults());
    for (int r = 0; r < 2; r++) {
      Trainer trainer =
          new Trainer(new OptimizerClient(channel(optimizer.port()), ClientOptions.defaults()));
      TrainerServer server =
          new TrainerServer(
                  Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                  trainer,
                  ServiceMetrics.newIsolated())
              .start();
      servers.add(server);
      trainerTargets.add("127.0.0.1:" + server.port());
      trainerStubs.add(TrainerServiceGrpc.newBlockingStub(channel(server.port())));
    }
    long t0 = System.nanoTime();
    for (int r = 0; r < 2; r++) {
      trainerStubs.get(r).start(start(r));
    }
    // The optimizer reaching the last step is the event to wait for.
    optimizerClient.parameters(RUN, Sequence.SEQUENCE_EVAL, STEPS);
    System.out.printf(
        "cluster: %d MLP steps on 2 replicas in %.1f s%n", STEPS, (System.nanoTime() - t0) / 1e9);
  }

  private ServerInterceptor countParameterReads() {
    return new ServerInterceptor() {
      @Override
      public <Q, A> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
        if ("GetParameters".equals(call.getMethodDescriptor().getBareMethodName())) {
          parameterReads.incrementAndGet();
        }
        return next.startCall(call, headers);
      }
    };
  }

  /** The trainers' model spec. */
  public static ModelSpec model() {
    return ModelSpec.newBuilder().setArchitecture(MLP).addInputShape(784).build();
  }

  private static StartRequest start(int replica) {
    return StartRequest.newBuilder()
        .setRunId(RUN)
        .setReplica(replica)
        .setReplicas(2)
        .setModel(model())
        .setDataset(DatasetSpec.getDefaultInstance())
        .setGlobalBatchSize(64)
        .setDataSeed(1)
        .setMaxSteps(STEPS)
        .setProgressEverySteps(100)
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
        .setHyperparameters(Hyperparameters.newBuilder().setLr(0.005).setWarmupSteps(20))
        .setStepMode(StepMode.STEP_MODE_SYNC)
        .build();
  }

  /**
   * A checkpoint server on loopback over this cluster.
   *
   * @param trainerTargets the trainers it asks (for example {@link #trainerTargets})
   * @param options deadlines and retries of its upstream calls
   */
  public CheckpointServiceGrpc.CheckpointServiceBlockingStub checkpointServer(
      Path dir, List<String> trainerTargets, Retention retention, ClientOptions options)
      throws Exception {
    ManagedChannel toOptimizer = channel(optimizer.port());
    List<TrainerClient> trainers = new ArrayList<>();
    for (String target : trainerTargets) {
      ManagedChannel c =
          Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
      channels.add(c);
      trainers.add(new TrainerClient(c, trainers.size(), target, options));
    }
    Checkpoints checkpoints =
        new Checkpoints(
            new OptimizerClient(toOptimizer, options),
            "127.0.0.1:" + optimizer.port(),
            new OptimizerStateClient(toOptimizer, options),
            trainers,
            executor,
            new CheckpointStore(dir),
            retention,
            Clock.systemUTC());
    CheckpointServer server =
        new CheckpointServer(
                Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                checkpoints,
                ServiceMetrics.newIsolated())
            .start();
    checkpointServers.add(server);
    return CheckpointServiceGrpc.newBlockingStub(channel(server.port()));
  }

  /** Client options for tests: 2 attempts, short backoff. */
  public static ClientOptions fastFailing() {
    return new ClientOptions(
        Duration.ofSeconds(30),
        Duration.ofMinutes(2),
        2,
        Duration.ofMillis(20),
        Duration.ofMillis(50),
        1 << 20);
  }

  public ManagedChannel channel(int port) {
    ManagedChannel c =
        Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
            .maxInboundMessageSize(16 << 20)
            .build();
    channels.add(c);
    return c;
  }

  @Override
  public void close() throws Exception {
    for (CheckpointServer s : checkpointServers) {
      s.shutdown(1);
    }
    for (TrainerServer s : servers) {
      s.shutdown(1);
    }
    for (ManagedChannel c : channels) {
      c.shutdownNow();
    }
    executor.shutdownNow();
    optimizer.shutdown(1);
  }
}
