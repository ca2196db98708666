package dev.roadless.optimizer.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * The step kernel against the fused C reference ({@code src/test/c/adamw_sf_step.c}) in one run
 * (issue 15): for every size, thread count and page mode, the C loop, then the JMH row (AdamW-SF, y
 * out, no gradient scan: {@code stepFiniteGradients}), then the C loop again, so each Java figure
 * has its baseline measured right next to it. Arguments, all optional: {@code params=10000000,...},
 * {@code threads=1,2}, {@code thp=false,true}, {@code rounds=N}, {@code gradientCheck=true} (the
 * core's public step, which scans g first), {@code jvm="..."} (extra JVM flags for the forks). When
 * gcc is missing the Java rows still run and the C column says so.
 */
final class KernelVsC {
  private static final Pattern C_LINE =
      Pattern.compile("median_ms=([0-9.]+) min_ms=([0-9.]+) max_ms=([0-9.]+)");

  private KernelVsC() {}

  record Row(long params, int threads, boolean thp, double javaMs, double[] c, String load) {}

  static void main(List<String> args) throws Exception {
    List<Long> sizes = List.of(10_000_000L, 50_000_000L);
    List<Integer> threadCounts = List.of(1, 2);
    List<Boolean> thps = List.of(false);
    int rounds = 1;
    boolean gradientCheck = false;
    String jvm = "";
    for (String a : args) {
      String v = a.substring(a.indexOf('=') + 1);
      if (a.startsWith("params=")) {
        sizes = split(v).stream().map(Long::parseLong).toList();
      } else if (a.startsWith("threads=")) {
        threadCounts = split(v).stream().map(Integer::parseInt).toList();
      } else if (a.startsWith("thp=")) {
        thps = split(v).stream().map(Boolean::parseBoolean).toList();
      } else if (a.startsWith("rounds=")) {
        rounds = Integer.parseInt(v);
      } else if (a.startsWith("gradientCheck=")) {
        gradientCheck = Boolean.parseBoolean(v);
      } else if (a.startsWith("jvm=")) {
        jvm = v;
      } else if (!a.equals("vsc")) {
        throw new IllegalArgumentException("unknown argument " + a);
      }
    }
    Path binary = compile();
    List<Row> rows = new ArrayList<>();
    for (int r = 0; r < rounds; r++) {
      for (long n : sizes) {
        for (int threads : threadCounts) {
          for (boolean thp : thps) {
            String load = loadAverage();
            double[] before = runC(binary, n, threads, thp);
            double javaMs = runJava(n, threads, thp, gradientCheck, jvm);
            double[] after = runC(binary, n, threads, thp);
            rows.add(new Row(n, threads, thp, javaMs, concat(before, after), load));
            print(rows);
          }
        }
      }
    }
  }

  private static List<String> split(String v) {
    return List.of(v.split(","));
  }

  private static double[] concat(double[] a, double[] b) {
    if (a == null || b == null) {
      return null;
    }
    return new double[] {a[0], a[1], a[2], b[0], b[1], b[2]};
  }

  /** Compiles the reference into target/c-bench; null (and a note) when gcc is not there. */
  private static Path compile() throws IOException, InterruptedException {
    Path src = Path.of("src/test/c/adamw_sf_step.c");
    if (!Files.exists(src)) {
      src = Path.of("optimizer-service/src/test/c/adamw_sf_step.c");
    }
    Path out = src.toAbsolutePath().getParent().getParent().getParent().getParent();
    Path binary = out.resolve("target/c-bench/adamw_sf_step");
    Files.createDirectories(binary.getParent());
    List<String> cmd =
        List.of(
            "gcc",
            "-O3",
            "-march=native",
            "-fopenmp",
            "-fno-math-errno",
            "-ffp-contract=off",
            "-o",
            binary.toString(),
            src.toString(),
            "-lm");
    try {
      Process p = new ProcessBuilder(cmd).inheritIO().start();
      if (p.waitFor() != 0) {
        System.out.println("NOTE: gcc failed; the C column is left empty");
        return null;
      }
    } catch (IOException e) {
      System.out.println("NOTE: gcc is not installed; the C column is left empty");
      return null;
    }
    System.out.println("C reference: " + String.join(" ", cmd));
    return binary;
  }

  /** {median, min, max} ms per step of the C loop, or null without a binary. */
  private static double[] runC(Path binary, long n, int threads, boolean thp)
      throws IOException, InterruptedException {
    if (binary == null) {
      return null;
    }
    int steps = n > 20_000_000 ? 30 : 60;
    Process p =
        new ProcessBuilder(
                binary.toString(),
                Long.toString(n),
                Integer.toString(threads),
                thp ? "thp" : "default",
                "10",
                Integer.toString(steps))
            .redirectErrorStream(true)
            .start();
    String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor();
    System.out.print(text);
    Matcher m = C_LINE.matcher(text);
    if (!m.find()) {
      return null;
    }
    return new double[] {
      Double.parseDouble(m.group(1)), Double.parseDouble(m.group(2)), Double.parseDouble(m.group(3))
    };
  }

  private static double runJava(long n, int threads, boolean thp, boolean gradientCheck, String jvm)
      throws RunnerException {
    List<String> flags = new ArrayList<>(List.of("-Xms6g", "-Xmx6g", "-XX:+AlwaysPreTouch"));
    flags.add("--add-modules=jdk.incubator.vector");
    if (thp) {
      flags.add("-XX:+UseTransparentHugePages");
    }
    if (!jvm.isBlank()) {
      flags.addAll(List.of(jvm.trim().split("\\s+")));
    }
    Collection<RunResult> results =
        new Runner(
                new OptionsBuilder()
                    .include(StepBenchmark.class.getName() + ".step")
                    .param("params", Long.toString(n))
                    .param("variant", "ADAMW")
                    .param("threads", Integer.toString(threads))
                    .param("tensorSize", "0")
                    .param("yOut", "true")
                    .param("gradientCheck", Boolean.toString(gradientCheck))
                    .warmupIterations(4)
                    .warmupTime(TimeValue.seconds(1))
                    .measurementIterations(5)
                    .measurementTime(TimeValue.seconds(2))
                    .jvmArgsAppend(flags.toArray(new String[0]))
                    .build())
            .run();
    return results.iterator().next().getPrimaryResult().getStatistics().getPercentile(50);
  }

  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException e) {
      return "?";
    }
  }

  private static void print(List<Row> rows) {
    System.out.println();
    System.out.println(
        "params     threads thp   Java ms   C ms (before/after, median)  C min  Java/C  load(1,5,15)");
    for (Row r : rows) {
      String c = "no C";
      String ratio = "";
      String min = "";
      if (r.c() != null) {
        double cMs = (r.c()[0] + r.c()[3]) / 2;
        c = String.format(Locale.ROOT, "%8.2f / %8.2f", r.c()[0], r.c()[3]);
        min = String.format(Locale.ROOT, "%6.2f", Math.min(r.c()[1], r.c()[4]));
        ratio = String.format(Locale.ROOT, "%.2fx", r.javaMs() / cMs);
      }
      System.out.println(
          String.format(
              Locale.ROOT,
              "%-10d %7d %-5s %8.2f  %-28s %6s  %6s  %s",
              r.params(),
              r.threads(),
              r.thp(),
              r.javaMs(),
              c,
              min,
              ratio,
              r.load()));
    }
  }
}
