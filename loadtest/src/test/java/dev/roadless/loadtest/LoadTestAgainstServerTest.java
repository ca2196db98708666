package dev.roadless.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Short runs of the tool against a real optimizer server process on loopback, over TLS with a
 * bearer token: the report's counts agree with the server's own /metrics, an injected error shows
 * up under its status and reason, and a missed objective or error budget makes the tool exit
 * non-zero.
 */
class LoadTestAgainstServerTest {
  @TempDir static Path work;
  private static OptimizerProcess server;

  @BeforeAll
  static void startServer() throws Exception {
    server = OptimizerProcess.start(work);
  }

  @AfterAll
  static void stopServer() throws Exception {
    server.close();
  }

  @Test
  void run_syncWithInjectedNanAndReads_countsAgreeWithServerMetrics() throws Exception {
    double refusedBefore =
        server.counter("roadless_pushes_refused_total", "reason", "NON_FINITE_GRADIENT");
    Tool tool =
        run(
            "sync-nan",
            "--replicas=4",
            "--runs=2",
            "--params=5000",
            "--tensors=3",
            "--steps=40",
            "--inject-nan=0.2",
            "--read-rate=20",
            "--status-rate=20");

    assertEquals(LoadTestMain.PASSED, tool.exit, tool.output);
    JsonNode r = tool.report;
    for (String run : List.of("sync-nan-0", "sync-nan-1")) {
      long seen = r.at("/counts/steps_applied_by_run/" + run).asLong();
      assertEquals(40, seen, run);
      assertEquals(seen, (long) server.counter("roadless_steps_applied_total", "run", run), run);
      assertEquals(seen, r.at("/server/steps_applied_by_run/" + run).asLong(), run);
    }
    assertEquals(80, r.at("/counts/steps_applied").asLong());
    long injected = errors(r, "Train", "INVALID_ARGUMENT", "NON_FINITE_GRADIENT");
    assertTrue(injected > 0, "no injected refusal in " + r.get("errors"));
    double refusedByServer =
        server.counter("roadless_pushes_refused_total", "reason", "NON_FINITE_GRADIENT")
            - refusedBefore;
    assertEquals(injected, (long) refusedByServer);
    assertEquals(injected, r.at("/server/pushes_refused/NON_FINITE_GRADIENT").asLong());
    assertEquals(injected, r.at("/counts/calls_failed").asLong());
    assertTrue(r.at("/counts/calls_ok/GetParameters").asLong() > 0);
    assertTrue(r.at("/counts/calls_ok/GetRunStatus").asLong() > 0);
    assertEquals(80, r.at("/latency_ms/step/count").asLong());
    assertTrue(r.at("/latency_ms/step/p99").asDouble() >= r.at("/latency_ms/step/p50").asDouble());
    assertTrue(r.at("/server/cpu_seconds").asDouble() > 0, "no process CPU on /metrics");
    assertTrue(r.at("/server/resident_bytes_after").asDouble() > 0, "no RSS on /metrics");
    String html = Files.readString(work.resolve("sync-nan/report.html"));
    assertTrue(html.contains("<svg") && html.contains("Latency over time"), "no plots");
    assertFalse(html.contains("<script src") || html.contains("<link "), "not self-contained");
  }

  @Test
  void run_latencyObjectiveMissed_exitsWithCheckMissed() throws Exception {
    Tool tool =
        run("slo", "--replicas=2", "--params=1000", "--steps=10", "--objectives=step:p50<=1us");

    assertEquals(LoadTestMain.CHECK_MISSED, tool.exit, tool.output);
    assertFalse(tool.report.get("passed").asBoolean());
    assertTrue(tool.output.contains("MISSED step:p50"), tool.output);
  }

  @Test
  void run_errorBudgetMissed_exitsWithCheckMissed() throws Exception {
    Tool tool =
        run(
            "budget",
            "--replicas=2",
            "--params=1000",
            "--steps=20",
            "--inject-nan=0.5",
            "--max-error-rate=0.01");

    assertEquals(LoadTestMain.CHECK_MISSED, tool.exit, tool.output);
    assertTrue(errors(tool.report, "Train", "INVALID_ARGUMENT", "NON_FINITE_GRADIENT") > 0);
  }

  @Test
  void run_openLoopForDurations_countsAgreeWithServerMetrics() throws Exception {
    for (String mode : List.of("sync", "async")) {
      double staleBefore = server.counter("roadless_pushes_refused_total", "reason", "STEP_STALE");
      Tool tool =
          run(
              "open-" + mode,
              "--mode=" + mode,
              "--replicas=3",
              "--params=2000",
              "--rate=40",
              "--duration=2s",
              "--warmup=1s",
              "--transport=bf16",
              "--objectives=Train:p99<=10s,step:p99<=10s");

      assertEquals(LoadTestMain.PASSED, tool.exit, tool.output);
      long seen = tool.report.at("/counts/steps_applied_by_run/open-" + mode + "-0").asLong();
      assertTrue(seen > 0, mode);
      assertEquals(
          seen,
          (long) server.counter("roadless_steps_applied_total", "run", "open-" + mode + "-0"),
          mode);
      assertEquals("open", tool.report.at("/scenario/loop").asText());
      // An ASYNC replica that falls behind its rate may push a gradient the run has moved too far
      // past: the server refuses it as stale, and both sides must count it alike.
      long stale = errors(tool.report, "Train", "ABORTED", "STEP_STALE");
      assertEquals(stale, tool.report.at("/counts/calls_failed").asLong(), tool.output);
      assertEquals(
          stale,
          (long)
              (server.counter("roadless_pushes_refused_total", "reason", "STEP_STALE")
                  - staleBefore),
          mode);
      if (mode.equals("sync")) {
        assertEquals(0, stale, tool.output);
      }
    }
  }

  @Test
  void run_unknownFlag_exitsWithBadConfig() throws Exception {
    var err = new ByteArrayOutputStream();
    int exit =
        LoadTestMain.run(
            new String[] {"--replica=3"},
            Map.of(),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));

    assertEquals(LoadTestMain.BAD_CONFIG, exit);
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown flag --replica"));
  }

  private record Tool(int exit, String output, JsonNode report) {}

  private static Tool run(String name, String... flags) throws Exception {
    List<String> args = new ArrayList<>(List.of(flags));
    args.add("--optimizer-target=" + server.target());
    args.add("--tls-ca=" + OptimizerProcess.CA);
    args.add("--metrics-url=" + server.metricsUrl());
    args.add("--run-prefix=" + name);
    args.add("--out=" + work.resolve(name));
    var out = new ByteArrayOutputStream();
    PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
    int exit =
        LoadTestMain.run(
            args.toArray(String[]::new),
            Map.of("ROADLESS_TOKEN", OptimizerProcess.TOKEN),
            print,
            print);
    JsonNode report =
        new ObjectMapper().readTree(work.resolve(name).resolve("report.json").toFile());
    return new Tool(exit, out.toString(StandardCharsets.UTF_8), report);
  }

  private static long errors(JsonNode report, String rpc, String status, String reason) {
    long n = 0;
    for (JsonNode e : report.get("errors")) {
      if (e.get("rpc").asText().equals(rpc)
          && e.get("status").asText().equals(status)
          && e.get("reason").asText().equals(reason)) {
        n += e.get("count").asLong();
      }
    }
    return n;
  }
}
