package dev.roadless.optimizer.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What the benches read about a process from Linux's /proc and from the JDK's jcmd. */
final class ProcStats {
  private ProcStats() {}

  /** CPU time (user + system) of a process so far, ns; 0 where the OS does not say. */
  static long cpuNanos(long pid) {
    return ProcessHandle.of(pid)
        .flatMap(h -> h.info().totalCpuDuration())
        .map(java.time.Duration::toNanos)
        .orElse(0L);
  }

  /** Minor page faults of a process so far (field 10 of /proc/PID/stat); 0 off Linux. */
  static long minorFaults(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      // Fields after the command name, which is in parentheses and may contain spaces.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Long.parseLong(f[7]);
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  /** Resident set size of a process, bytes (VmRSS of /proc/PID/status); 0 off Linux. */
  static long rssBytes(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      return 0;
    }
    return 0;
  }

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
      return f[0] + " " + f[1] + " " + f[2] + " (1, 5, 15 min)";
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }

  /** Runs {@code jcmd PID command...} (the JDK's own, beside this JVM) and returns its output. */
  static String jcmd(long pid, String... command) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString());
    cmd.add(Long.toString(pid));
    cmd.addAll(List.of(command));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(60, TimeUnit.SECONDS);
    return out;
  }

  private static final Pattern GENERATION = Pattern.compile("total (\\d+)K, used (\\d+)K");

  /**
   * The Java heap of a process from {@code GC.heap_info}: {committed, used} bytes, summed over its
   * generations (ParallelGC and Serial print one line per generation, G1 one for the whole heap).
   */
  static long[] heap(long pid) throws IOException, InterruptedException {
    long committed = 0;
    long used = 0;
    for (String line : jcmd(pid, "GC.heap_info").split("\n")) {
      Matcher m = GENERATION.matcher(line);
      if (m.find() && !line.contains("Metaspace") && !line.contains("class space")) {
        committed += Long.parseLong(m.group(1)) * 1024;
        used += Long.parseLong(m.group(2)) * 1024;
      }
    }
    return new long[] {committed, used};
  }

  private static final Pattern NMT_CATEGORY =
      Pattern.compile("^-\\s+(.+?) \\(reserved=(\\d+)KB, committed=(\\d+)KB");

  /**
   * NMT's committed memory per category ({@code VM.native_memory summary}), largest first, as "name
   * MB" pairs; empty unless the process runs with -XX:NativeMemoryTracking=summary.
   */
  static String nativeMemory(long pid) throws IOException, InterruptedException {
    List<long[]> sizes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (String line : jcmd(pid, "VM.native_memory", "summary").split("\n")) {
      Matcher m = NMT_CATEGORY.matcher(line.trim());
      if (m.find()) {
        names.add(m.group(1).trim());
        sizes.add(new long[] {Long.parseLong(m.group(3)), names.size() - 1});
      }
    }
    sizes.sort((a, b) -> Long.compare(b[0], a[0]));
    StringBuilder out = new StringBuilder();
    for (long[] s : sizes) {
      if (s[0] >= 1024) {
        out.append(String.format("%s %.0f MB, ", names.get((int) s[1]), s[0] / 1024.0));
      }
    }
    return out.length() == 0 ? "" : out.substring(0, out.length() - 2);
  }

  /** The {@code n} largest rows of {@code GC.class_histogram} (after a full GC: live objects). */
  static String histogram(long pid, int n) throws IOException, InterruptedException {
    StringBuilder out = new StringBuilder();
    int rows = 0;
    for (String line : jcmd(pid, "GC.class_histogram").split("\n")) {
      String[] f = line.trim().split("\\s+");
      if (f.length >= 4 && f[0].endsWith(":") && rows++ < n) {
        out.append(String.format("%s %.0f MB in %s, ", f[3], Long.parseLong(f[2]) / 1e6, f[1]));
      }
    }
    return out.length() == 0 ? "" : out.substring(0, out.length() - 2);
  }
}
