package dev.roadless.trainer.bench;

import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.Mnist;
import dev.roadless.trainer.model.LayerProfiler;
import dev.roadless.trainer.model.LayerProfiler.LayerTiming;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.deeplearning4j.nn.layers.mkldnn.BaseMKLDNNHelper;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Forward+backward throughput of the MLP and the CNN at batch 64, DL4J against PyTorch on the CPU
 * in the same run. Not a test: run it with
 *
 * <pre>
 * ./mvnw -q -pl trainer-service -am install -DskipTests
 * ./mvnw -q -pl trainer-service exec:java -Dexec.args="--rounds 5"
 * </pre>
 *
 * <p>One iteration is {@link Model#computeGradient} (DL4J) or zero_grad + forward + cross entropy +
 * backward (PyTorch, {@code tools/bench_pytorch.py}, same architecture, same MNIST batch, same
 * thread count as ND4J). Because the machine may be shared, the two are interleaved: every round
 * times each model in DL4J and then in PyTorch, and the reported ratio is the median of the rounds'
 * ratios. Finally the DL4J time is broken down per layer.
 *
 * <p>Options: {@code --batch 64 --warmup 10 --iterations 20 --rounds 10 --mlp-hidden 256
 * --cnn-widths 16,32 --python python3 --no-torch}.
 */
public final class TrainerBench {
  private TrainerBench() {}

  public static void main(String[] argv) throws IOException {
    Map<String, String> opt = parse(argv);
    int batch = Integer.parseInt(opt.getOrDefault("batch", "64"));
    int warmup = Integer.parseInt(opt.getOrDefault("warmup", "10"));
    int iterations = Integer.parseInt(opt.getOrDefault("iterations", "20"));
    int rounds = Integer.parseInt(opt.getOrDefault("rounds", "10"));
    int hidden = Integer.parseInt(opt.getOrDefault("mlp-hidden", "256"));
    String widths = opt.getOrDefault("cnn-widths", "16,32");
    int[] w = Arrays.stream(widths.split(",")).mapToInt(Integer::parseInt).toArray();
    boolean torch = !opt.containsKey("no-torch");

    Map<String, ModelSpec> specs = new LinkedHashMap<>();
    specs.put("mlp", ModelSpec.mlp(784, hidden, 10));
    specs.put("cnn", ModelSpec.cnn(1, 28, 28, w[0], w[1], 10));
    Batch b = Mnist.train().range(0, batch);
    int threads = Nd4j.getEnvironment().maxThreads();

    System.out.printf(
        Locale.ROOT,
        "trainer-service forward+backward benchmark: batch %d, median of %d iterations after %d"
            + " warm-up, %d interleaved rounds%n",
        batch,
        iterations,
        warmup,
        rounds);
    System.out.printf(
        Locale.ROOT,
        "models: mlp = 784-%d(BN)-10, cnn = conv3x3(1->%d)-BN-ReLU-conv3x3(%d->%d)-BN-ReLU-GAP-fc%n",
        hidden,
        w[0],
        w[0],
        w[1]);
    System.out.printf(
        Locale.ROOT,
        "ND4J %s: threads %d, oneDNN helpers %s; %d CPUs, load average %.2f%n",
        Nd4j.getExecutioner().getEnvironmentInformation().getProperty("backend"),
        threads,
        BaseMKLDNNHelper.mklDnnEnabled() ? "on" : "off",
        Runtime.getRuntime().availableProcessors(),
        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());

    Map<String, Model> models = new LinkedHashMap<>();
    specs.forEach((k, s) -> models.put(k, Model.create(s, 1)));
    Map<String, List<Double>> dl4j = new LinkedHashMap<>();
    Map<String, List<Double>> pt = new LinkedHashMap<>();
    Map<String, List<Double>> ratio = new LinkedHashMap<>();
    try (TorchWorker worker = torch ? startTorch(opt, batch, hidden, widths, threads) : null) {
      if (worker != null) {
        System.out.println("PyTorch: " + worker.ask("info"));
      }
      for (int r = 0; r < rounds; r++) {
        for (String name : specs.keySet()) {
          double d = median(timeDl4j(models.get(name), b, warmup, iterations));
          dl4j.computeIfAbsent(name, k -> new ArrayList<>()).add(d);
          if (worker != null) {
            double p = median(worker.time(name, warmup, iterations));
            pt.computeIfAbsent(name, k -> new ArrayList<>()).add(p);
            ratio.computeIfAbsent(name, k -> new ArrayList<>()).add(d / p);
            System.out.printf(
                Locale.ROOT,
                "round %d %-4s DL4J %8.2f ms  PyTorch %7.2f ms  ratio %5.2f%n",
                r,
                name,
                d,
                p,
                d / p);
          } else {
            System.out.printf(Locale.ROOT, "round %d %-4s DL4J %8.2f ms%n", r, name, d);
          }
        }
      }
    }

    System.out.println();
    System.out.println(
        "| model | threads | DL4J ms/batch | DL4J examples/s | PyTorch ms/batch |"
            + " PyTorch examples/s | DL4J/PyTorch (median of rounds) |"
            + " least disturbed round: DL4J ms, PyTorch ms |");
    System.out.println("|---|---:|---:|---:|---:|---:|---:|---|");
    for (String name : specs.keySet()) {
      double d = median(dl4j.get(name));
      boolean hasTorch = pt.containsKey(name);
      int best = argMin(dl4j.get(name));
      System.out.printf(
          Locale.ROOT,
          "| %s | %d | %s | %s | %s | %s | %s | %s, %s |%n",
          name,
          threads,
          fmt(d),
          fmt0(batch * 1000 / d),
          hasTorch ? fmt(median(pt.get(name))) : "-",
          hasTorch ? fmt0(batch * 1000 / median(pt.get(name))) : "-",
          hasTorch ? String.format(Locale.ROOT, "%.2fx", median(ratio.get(name))) : "-",
          fmt(dl4j.get(name).get(best)),
          hasTorch ? fmt(pt.get(name).get(best)) : "-");
    }

    System.out.println();
    System.out.println("DL4J per layer (median ms, training mode, layers driven one by one):");
    for (Map.Entry<String, Model> e : models.entrySet()) {
      List<LayerTiming> t =
          LayerProfiler.profile(e.getValue(), b.inputs(), b.labels(), batch, 3, 10);
      double total = t.stream().mapToDouble(x -> x.forwardMs() + x.backwardMs()).sum();
      System.out.printf(Locale.ROOT, "%s (sum %.2f ms)%n", e.getKey(), total);
      for (LayerTiming x : t) {
        System.out.printf(
            Locale.ROOT,
            "  %2d %-20s forward %7.2f  backward %7.2f  (%4.1f%%)%n",
            x.index(),
            x.layer(),
            x.forwardMs(),
            x.backwardMs(),
            100 * (x.forwardMs() + x.backwardMs()) / total);
      }
    }
  }

  private static int argMin(List<Double> v) {
    int best = 0;
    for (int i = 1; i < v.size(); i++) {
      if (v.get(i) < v.get(best)) {
        best = i;
      }
    }
    return best;
  }

  private static double[] timeDl4j(Model m, Batch b, int warmup, int iterations) {
    double[] ms = new double[iterations];
    for (int i = -warmup; i < iterations; i++) {
      long t0 = System.nanoTime();
      m.computeGradient(b.inputs(), b.labels(), b.size());
      if (i >= 0) {
        ms[i] = (System.nanoTime() - t0) / 1e6;
      }
    }
    return ms;
  }

  private static TorchWorker startTorch(
      Map<String, String> opt, int batch, int hidden, String widths, int threads)
      throws IOException {
    Path script = findScript();
    Path dir = Files.createTempDirectory("bench-mnist");
    Path images = copyResource("/mnist/train-images-idx3-ubyte.gz", dir);
    Path labels = copyResource("/mnist/train-labels-idx1-ubyte.gz", dir);
    return TorchWorker.start(
        opt.getOrDefault("python", "python3"),
        script,
        List.of(
            "--images", images.toString(),
            "--labels", labels.toString(),
            "--batch", Integer.toString(batch),
            "--mlp-hidden", Integer.toString(hidden),
            "--cnn-widths", widths,
            "--threads", Integer.toString(threads)));
  }

  private static Path findScript() throws IOException {
    for (String candidate :
        List.of("tools/bench_pytorch.py", "trainer-service/tools/bench_pytorch.py")) {
      Path p = Path.of(candidate);
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    throw new IOException("tools/bench_pytorch.py not found; run from the repository root");
  }

  private static Path copyResource(String resource, Path dir) throws IOException {
    Path target = dir.resolve(resource.substring(resource.lastIndexOf('/') + 1));
    try (InputStream in = TrainerBench.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException("missing resource " + resource);
      }
      Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
    }
    target.toFile().deleteOnExit();
    return target;
  }

  private static Map<String, String> parse(String[] argv) {
    Map<String, String> out = new LinkedHashMap<>();
    for (int i = 0; i < argv.length; i++) {
      if (!argv[i].startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument " + argv[i]);
      }
      String key = argv[i].substring(2);
      boolean flag = i + 1 >= argv.length || argv[i + 1].startsWith("--");
      out.put(key, flag ? "true" : argv[++i]);
    }
    return out;
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  static double median(List<Double> v) {
    return median(v.stream().mapToDouble(Double::doubleValue).toArray());
  }

  private static String fmt(double v) {
    return String.format(Locale.ROOT, "%.2f", v);
  }

  private static String fmt0(double v) {
    return String.format(Locale.ROOT, "%.0f", v);
  }
}
