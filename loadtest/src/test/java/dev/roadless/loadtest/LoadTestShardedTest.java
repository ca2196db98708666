package dev.roadless.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tool driving runs sharded over two optimizer processes: every shard applies every step. */
class LoadTestShardedTest {
  @Test
  void run_syncShardedOverTwoServers_everyShardAppliesEveryStep(@TempDir Path work)
      throws Exception {
    try (OptimizerProcess shard0 =
            OptimizerProcess.start(Files.createDirectory(work.resolve("0")));
        OptimizerProcess shard1 =
            OptimizerProcess.start(Files.createDirectory(work.resolve("1")))) {
      var out = new ByteArrayOutputStream();
      PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
      int exit =
          LoadTestMain.run(
              new String[] {
                "--optimizer-shards=2",
                "--optimizer-shard-targets=" + shard0.target() + "," + shard1.target(),
                "--tls-ca=" + OptimizerProcess.CA,
                "--metrics-url=" + shard0.metricsUrl(),
                "--replicas=2",
                "--params=5000",
                "--tensors=3",
                "--steps=20",
                "--run-prefix=sharded",
                "--out=" + work.resolve("out")
              },
              Map.of("ROADLESS_TOKEN", OptimizerProcess.TOKEN),
              print,
              print);
      String output = out.toString(StandardCharsets.UTF_8);
      assertEquals(LoadTestMain.PASSED, exit, output);
      JsonNode r = new ObjectMapper().readTree(work.resolve("out/report.json").toFile());
      assertEquals(20, r.at("/counts/steps_applied_by_run/sharded-0").asLong(), output);
      for (OptimizerProcess shard : new OptimizerProcess[] {shard0, shard1}) {
        assertEquals(
            20.0, shard.counter("roadless_steps_applied_total", "run", "sharded-0"), output);
      }
    }
  }
}
