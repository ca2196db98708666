package dev.roadless.optimizer.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * Memory per parameter ({@code runs=memory}): for each {@code params=} size, a fresh server; its
 * resident memory (VmRSS) after start-up and a small warm-up run (3M parameters, 2 SYNC replicas
 * over TCP, so gRPC's and Netty's pools are warm); then one AdamW-SF run of P parameters with 2
 * SYNC replicas over TCP for the warm-up + timed steps. Reports the growth of VmRSS per parameter
 * after the steps and after a forced full GC ({@code jcmd PID GC.run}), the Java heap committed and
 * in use, and the server's minor page faults per timed step. With {@code runs=memory,nmt} the
 * server also runs with -XX:NativeMemoryTracking=summary and the bench prints NMT's committed
 * memory per category and the largest rows of the class histogram (live objects).
 */
final class MemoryBench {
  private MemoryBench() {}

  private static final long WARM_PARAMS = 3_000_000;

  static void run(ServingBench.Options o) throws Exception {
    boolean nmt = o.has("nmt");
    for (long params : o.params()) {
      List<String> extra = new ArrayList<>();
      if (nmt) {
        extra.add("-XX:NativeMemoryTracking=summary");
      }
      try (ChildJvm.Server server = ChildJvm.startServer(o.threads(), extra)) {
        long pid = server.pid();
        String tag = String.format("memory %,d params: ", params);
        System.out.println(tag + "load average before: " + ProcStats.loadAverage());
        System.out.println(tag + "server JVM flags: " + String.join(" ", server.flags()));
        long started = ProcStats.rssBytes(pid);
        ServingReplica.runAll(pid, server.port(), "warm-tcp", 2, WARM_PARAMS, 10, 10);
        long base = ProcStats.rssBytes(pid);
        long[] heapBase = ProcStats.heap(pid);
        System.out.printf(
            "%sVmRSS %.0f MB after start-up, %.0f MB after the warm-up run (%,d params, 2 SYNC"
                + " replicas, tcp: its run stays); heap %.0f MB committed, %.0f MB used%n",
            tag, started / 1e6, base / 1e6, WARM_PARAMS, heapBase[0] / 1e6, heapBase[1] / 1e6);
        if (nmt) {
          System.out.println(
              tag + "NMT committed after the warm-up: " + ProcStats.nativeMemory(pid));
        }
        ServingReplica.Outcome run =
            ServingReplica.runAll(pid, server.port(), "mem-tcp", 2, params, o.warmup(), o.steps());
        run.replicaLines().forEach(l -> System.out.println(tag + "2 replicas tcp SYNC: " + l));
        System.out.println(
            tag + "2 replicas tcp SYNC: " + run.serverLine() + " (timed steps, once warm)");
        report(tag + "after the steps: ", pid, base, params);
        if (nmt) {
          System.out.println(tag + "NMT committed: " + ProcStats.nativeMemory(pid));
        }
        ProcStats.jcmd(pid, "GC.run");
        report(tag + "after a full GC (jcmd GC.run): ", pid, base, params);
        if (nmt) {
          System.out.println(tag + "NMT committed after GC: " + ProcStats.nativeMemory(pid));
          System.out.println(tag + "live objects, largest: " + ProcStats.histogram(pid, 6));
        }
        System.out.println(tag + "load average after: " + ProcStats.loadAverage());
      }
    }
  }

  private static void report(String what, long pid, long base, long params) throws Exception {
    long rss = ProcStats.rssBytes(pid);
    long[] heap = ProcStats.heap(pid);
    System.out.printf(
        "%sVmRSS %.0f MB, growth %.1f bytes per parameter (state z, x, v: 12); heap %.0f MB"
            + " committed (%.1f B/param), %.0f MB used (%.1f B/param)%n",
        what,
        rss / 1e6,
        (rss - base) / (double) params,
        heap[0] / 1e6,
        heap[0] / (double) params,
        heap[1] / 1e6,
        heap[1] / (double) params);
  }
}
