package dev.roadless.trainer.service;

import dev.roadless.common.config.Settings;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.shard.ShardTargets;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.ModelSpec;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.trainer.data.DatasetRoots;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Typed configuration of a trainer replica, from flags or {@code ROADLESS_*} environment variables.
 * With {@code run-id} set the replica starts training on its own (how Kubernetes and the demo run
 * it); without, it waits for a Start call on its control API. With {@code optimizer-shards} (or
 * {@code optimizer-shard-targets}) its runs are sharded over those optimizer servers.
 */
public record TrainerConfig(
    int port,
    Path portFile,
    int metricsPort,
    String optimizerTarget,
    long drainSeconds,
    long startupTimeoutSeconds,
    DatasetRoots datasetRoots,
    StartRequest autostart,
    SecurityConfig security,
    List<String> optimizerShardTargets) {

  /**
   * The bundled models by name. {@code cnn} downsamples 28 -> 14 -> 7 -> 4 with stride-2
   * convolutions, so each of its last features sees 17x17 pixels before the global pool (about 98%
   * on the bundled digits); {@code cnn-small} pools two full-size 28x28 maps whose features see
   * only 5x5 pixels, which caps it near 85%.
   */
  static final Map<String, ModelSpec> MODELS =
      Map.of(
          "mlp",
          model(
              "fc1=Linear(784,256,bias=False) -> bn1=BatchNorm1d(256) -> relu=ReLU"
                  + " -> fc2=Linear(256,10)",
              784),
          "cnn",
          model(
              "conv1=Conv2d(1,16,3,padding=1,bias=False) -> bn1=BatchNorm2d(16) -> relu1=ReLU"
                  + " -> conv2=Conv2d(16,32,3,stride=2,padding=1,bias=False)"
                  + " -> bn2=BatchNorm2d(32) -> relu2=ReLU"
                  + " -> conv3=Conv2d(32,64,3,stride=2,padding=1,bias=False)"
                  + " -> bn3=BatchNorm2d(64) -> relu3=ReLU"
                  + " -> conv4=Conv2d(64,128,3,stride=2,padding=1,bias=False)"
                  + " -> bn4=BatchNorm2d(128) -> relu4=ReLU"
                  + " -> pool=AdaptiveAvgPool2d(1) -> flatten=Flatten -> fc=Linear(128,10)",
              1,
              28,
              28),
          "cnn-small",
          model(
              "conv1=Conv2d(1,16,3,padding=1,bias=False) -> bn1=BatchNorm2d(16) -> relu1=ReLU"
                  + " -> conv2=Conv2d(16,32,3,padding=1,bias=False) -> bn2=BatchNorm2d(32)"
                  + " -> relu2=ReLU -> pool=AdaptiveAvgPool2d(1) -> flatten=Flatten"
                  + " -> fc=Linear(32,10)",
              1,
              28,
              28));

  public static final List<Settings.Key> KEYS =
      ShardTargets.with(
          List.of(
              Settings.Key.integer(
                  "port", "50052", 0, 65535, "control gRPC port; 0 picks a free one"),
              Settings.Key.text("port-file", "", "if set, the bound gRPC port is written there"),
              Settings.Key.integer("metrics-port", "9464", -1, 65535, "Prometheus port; -1 off"),
              Settings.Key.text("optimizer-target", "127.0.0.1:50051", "optimizer gRPC target"),
              Settings.Key.integer("drain-seconds", "30", 0, 3600, "shutdown drain"),
              Settings.Key.integer(
                  "startup-timeout-seconds",
                  "300",
                  1,
                  86_400,
                  "with run-id: how long to wait for the optimizer to be SERVING before giving up"),
              Settings.Key.text(
                  "dataset-roots",
                  "",
                  "comma-separated directories Start may read dataset files from (symbolic links"
                      + " resolved first); empty: only the bundled digits"),
              Settings.Key.text(
                  "run-id", "", "start training this run at once (empty: wait for Start)"),
              Settings.Key.integer("replica", "0", 0, 1023, "this replica's index r"),
              Settings.Key.integer("replicas", "1", 1, 1024, "number of replicas R"),
              Settings.Key.text("model", "mlp", "bundled model: mlp | cnn | cnn-small"),
              Settings.Key.integer(
                  "steps", "0", 0, Integer.MAX_VALUE, "stop at this step (0: never)"),
              Settings.Key.integer(
                  "global-batch", "64", 1, 1 << 20, "examples per step, all replicas"),
              Settings.Key.integer(
                  "data-seed", "0", 0, Integer.MAX_VALUE, "seed of the data order"),
              Settings.Key.integer(
                  "init-seed", "0", 0, Integer.MAX_VALUE, "seed of the initial weights"),
              Settings.Key.text(
                  "variant",
                  "adamw",
                  "sgd | adamw | adamw-paper | radam | wrapper-sgd | wrapper-adam"),
              Settings.Key.text("lr", "", "learning rate (empty: the variant's default)"),
              Settings.Key.integer(
                  "warmup-steps", "0", 0, Integer.MAX_VALUE, "linear warmup steps"),
              Settings.Key.text("weight-decay", "0", "weight decay"),
              Settings.Key.integer(
                  "progress-every", "100", 1, Integer.MAX_VALUE, "progress line interval")),
          0,
          " and optimizer-target");

  /** {@link #KEYS} and the security keys every service shares (common/README.md, "Security"). */
  public static final List<Settings.Key> ALL_KEYS =
      SecurityConfig.with(KEYS, SecurityConfig.allKeys());

  public static TrainerConfig from(String[] args, Map<String, String> env) {
    Settings s = Settings.parse(ALL_KEYS, args, env);
    StartRequest autostart = null;
    if (!s.text("run-id").isBlank()) {
      ModelSpec model = MODELS.get(s.text("model"));
      if (model == null) {
        throw new IllegalArgumentException("model must be one of " + MODELS.keySet());
      }
      Hyperparameters.Builder hp = Hyperparameters.newBuilder();
      if (!s.text("lr").isBlank()) {
        hp.setLr(Double.parseDouble(s.text("lr")));
      }
      if (s.integer("warmup-steps") > 0) {
        hp.setWarmupSteps(s.integer("warmup-steps"));
      }
      double decay = Double.parseDouble(s.text("weight-decay"));
      if (decay != 0) {
        hp.setWeightDecay(decay);
      }
      autostart =
          StartRequest.newBuilder()
              .setRunId(s.text("run-id"))
              .setReplica(s.integer("replica"))
              .setReplicas(s.integer("replicas"))
              .setModel(model.toBuilder().setInitSeed(s.integer("init-seed")))
              .setDataset(DatasetSpec.getDefaultInstance())
              .setGlobalBatchSize(s.integer("global-batch"))
              .setDataSeed(s.integer("data-seed"))
              .setMaxSteps(s.integer("steps"))
              .setProgressEverySteps(s.integer("progress-every"))
              .setVariant(variant(s.text("variant")))
              .setHyperparameters(hp)
              .setStepMode(StepMode.STEP_MODE_SYNC)
              .build();
    }
    return new TrainerConfig(
        s.integer("port"),
        s.path("port-file"),
        s.integer("metrics-port"),
        s.text("optimizer-target"),
        s.integer("drain-seconds"),
        s.integer("startup-timeout-seconds"),
        DatasetRoots.parse(s.text("dataset-roots")),
        autostart,
        SecurityConfig.from(s, true),
        ShardTargets.from(s));
  }

  static OptimizerVariant variant(String name) {
    try {
      return OptimizerVariant.valueOf(
          "OPTIMIZER_VARIANT_" + name.toUpperCase(Locale.ROOT).replace('-', '_'));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("unknown variant '" + name + "'");
    }
  }

  private static ModelSpec model(String architecture, int... inputShape) {
    ModelSpec.Builder b = ModelSpec.newBuilder().setArchitecture(architecture);
    for (int d : inputShape) {
      b.addInputShape(d);
    }
    return b.build();
  }
}
