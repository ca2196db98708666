package dev.roadless.optimizer.bench;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link StepBenchmark} and prints ms/step (median), GB/s and the 2-thread speed-up. With the
 * single argument {@code table} it runs the documented table; {@code quick} runs AdamW and SGD at
 * 10M only; {@code vsc ...} runs the kernel beside the fused C reference ({@link KernelVsC}); any
 * other arguments go to JMH's own command line.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length >= 1 && args[0].equals("vsc")) {
      KernelVsC.main(List.of(args));
    } else if (args.length == 1 && (args[0].equals("table") || args[0].equals("quick"))) {
      boolean quick = args[0].equals("quick");
      List<RunResult> results = new ArrayList<>();
      results.addAll(
          run(
              quick ? new String[] {"10000000"} : new String[] {"1000000", "10000000", "50000000"},
              new String[] {"ADAMW", "SGD"},
              "0",
              "false"));
      if (!quick) {
        // 1000 tensors of 10K: chunking over many small arrays; and streaming y out as well.
        results.addAll(
            run(new String[] {"10000000"}, new String[] {"ADAMW", "SGD"}, "10000", "false"));
        results.addAll(run(new String[] {"10000000"}, new String[] {"ADAMW"}, "0", "true"));
      }
      print(results);
    } else {
      org.openjdk.jmh.Main.main(args);
    }
  }

  private static Collection<RunResult> run(
      String[] params, String[] variants, String tensorSize, String yOut) throws RunnerException {
    Options o =
        new OptionsBuilder()
            .include(StepBenchmark.class.getName() + ".step")
            .param("params", params)
            .param("variant", variants)
            .param("threads", "1", "2")
            .param("tensorSize", tensorSize)
            .param("yOut", yOut)
            .build();
    return new Runner(o).run();
  }

  private static void print(List<RunResult> results) {
    Map<String, Double> oneThread = new HashMap<>();
    for (RunResult r : results) {
      if (r.getParams().getParam("threads").equals("1")) {
        oneThread.put(key(r), median(r));
      }
    }
    System.out.println();
    System.out.println(
        "variant  params      layout        y-out threads  median ms/step  mean ms  GB/s   speed-up");
    for (RunResult r : results) {
      var p = r.getParams();
      long n = Long.parseLong(p.getParam("params"));
      boolean y = Boolean.parseBoolean(p.getParam("yOut"));
      double ms = median(r);
      double gbs = StepBenchmark.bytesPerStep(p.getParam("variant"), n, y) / (ms * 1e-3) / 1e9;
      String layout =
          p.getParam("tensorSize").equals("0")
              ? "1 tensor"
              : "tensors of " + p.getParam("tensorSize");
      System.out.println(
          String.format(
              Locale.ROOT,
              "%-8s %-11d %-13s %-5s %7s  %14.3f  %7.3f  %5.1f  %s",
              p.getParam("variant"),
              n,
              layout,
              y,
              p.getParam("threads"),
              ms,
              r.getPrimaryResult().getScore(),
              gbs,
              p.getParam("threads").equals("1")
                  ? ""
                  : String.format(Locale.ROOT, "%.2fx", oneThread.get(key(r)) / ms)));
    }
  }

  private static String key(RunResult r) {
    var p = r.getParams();
    return p.getParam("variant")
        + p.getParam("params")
        + p.getParam("tensorSize")
        + p.getParam("yOut");
  }

  private static double median(RunResult r) {
    return r.getPrimaryResult().getStatistics().getPercentile(50);
  }
}
