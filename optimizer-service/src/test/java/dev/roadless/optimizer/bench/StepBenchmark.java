package dev.roadless.optimizer.bench;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One optimizer step (validation, schedule and the fused kernel) over {@code params} float32
 * parameters with one replica's gradient. Run through {@link BenchMain}; see docs/BENCHMARKS.md.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 4, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms6g", "-Xmx6g", "-XX:+AlwaysPreTouch"})
public class StepBenchmark {
  @Param({"ADAMW", "SGD"})
  public String variant;

  @Param({"1000000", "10000000", "50000000"})
  public int params;

  @Param({"1", "2"})
  public int threads;

  /** 0: one tensor of {@code params} elements; else tensors of this many elements. */
  @Param({"0"})
  public int tensorSize;

  /** Whether the step also writes y into caller arrays (what a server streaming y does). */
  @Param({"false"})
  public boolean yOut;

  /**
   * Whether the step scans the gradient for NaN and infinity first ({@code step(Map, Map)}, the
   * core's public path); false runs {@code stepFiniteGradients}, what the server calls after its
   * own scan at the edge, and what the fused C reference compares with.
   */
  @Param({"true"})
  public boolean gradientCheck;

  private ScheduleFreeOptimizer opt;
  private Map<String, float[][]> grads;
  private Map<String, float[]> ys;
  private float[][] gradArrays;
  private float[][] yArrays;

  @Setup(Level.Trial)
  public void setUp() {
    Variant v = Variant.valueOf(variant);
    int size = tensorSize == 0 ? params : tensorSize;
    List<TensorSpec> specs = new ArrayList<>();
    for (int left = params, i = 0; left > 0; left -= size, i++) {
      specs.add(TensorSpec.of("t" + i, Math.min(size, left)));
    }
    Hyperparameters hp = Hyperparameters.defaults(v).withLr(v == Variant.SGD ? 0.01 : 0.001);
    List<String> names = specs.stream().map(TensorSpec::name).toList();
    opt = new ScheduleFreeOptimizer(v, specs, List.of(new GroupSpec("g", names, hp)), threads);
    SplittableRandom rnd = new SplittableRandom(1);
    Map<String, float[]> init = new HashMap<>();
    grads = new HashMap<>();
    ys = yOut ? new HashMap<>() : null;
    for (TensorSpec s : specs) {
      int n = (int) s.numel();
      float[] x = new float[n];
      float[] g = new float[n];
      for (int i = 0; i < n; i++) {
        x[i] = (float) rnd.nextDouble(-1, 1);
        g[i] = (float) rnd.nextDouble(-1, 1);
      }
      init.put(s.name(), x);
      grads.put(s.name(), new float[][] {g});
      if (yOut) {
        ys.put(s.name(), new float[n]);
      }
    }
    opt.setInitialValues(init);
    gradArrays = new float[specs.size()][];
    yArrays = new float[specs.size()][];
    for (int t = 0; t < specs.size(); t++) {
      gradArrays[t] = grads.get(specs.get(t).name())[0];
      yArrays[t] = yOut ? ys.get(specs.get(t).name()) : null;
    }
  }

  @Benchmark
  public long step() {
    return gradientCheck ? opt.step(grads, ys) : opt.stepFiniteGradients(gradArrays, yArrays);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    opt.close();
  }

  /**
   * Bytes one step moves to and from memory: the finiteness check reads g; the kernel reads g, z, x
   * (and v for Adam) and writes z, x (and v), plus y when requested.
   */
  static long bytesPerStep(String variant, long params, boolean yOut) {
    int arrays = variant.equals("SGD") ? 1 + 3 + 2 : 1 + 4 + 3;
    return 4L * params * (arrays + (yOut ? 1 : 0));
  }
}
