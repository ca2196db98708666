package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.roadless.testing.GoldenCases;
import dev.roadless.trainer.model.BatchNormGoldenTest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The suites run a case set they were never tuned on: {@code testdata/make_cases.py} writes, with
 * real PyTorch modules, a batchnorm case of each module (BatchNorm1d over [N, C, L] included), a
 * gradcheck case of each architecture and a bn_warmup case, all at batch sizes, channel counts,
 * image sizes, step counts and warmup counts that differ from the visible set, into a fresh folder
 * next to non-case files; every suite's checker must pass on them. The generator's test-only
 * AdamWScheduleFree port must first reproduce the repository's real bn_warmup case bit for bit.
 * Needs python3 with torch (as checkpoint-service's load test does; {@code .ci/run} installs it).
 */
class GeneratedCasesTest {
  @TempDir Path tmp;

  @Test
  void suites_casesOfOtherSizesAmongNotes_matchPyTorch() throws Exception {
    Path dir = Files.createDirectory(tmp.resolve("cases"));
    generate(dir);
    Files.writeString(dir.resolve("README.md"), "# generated cases\n");
    Files.writeString(dir.resolve("kinds.json"), "{\"kinds\": [\"batchnorm\"]}");
    GoldenCases.Scan scan = GoldenCases.scan(dir);
    assertEquals(List.of("README.md", "kinds.json (no kind/format_version)"), scan.ignored());

    List<JsonNode> batchnorm = scan.ofKind(Set.of("batchnorm"));
    List<JsonNode> gradcheck = scan.ofKind(Set.of("gradcheck_mlp", "gradcheck_cnn"));
    List<JsonNode> warmup = scan.ofKind(Set.of("bn_warmup"));
    assertEquals(List.of(2, 2, 1), List.of(batchnorm.size(), gradcheck.size(), warmup.size()));
    assertNotEquals(
        trainBatchSizes(GoldenCases.scan(GoldenCases.REPOSITORY_COPY)), trainBatchSizes(scan));

    batchnorm.forEach(BatchNormGoldenTest::check);
    gradcheck.forEach(GradcheckGoldenTest::check);
    warmup.forEach(BnWarmupGoldenTest::check);
  }

  /** The bn_warmup train batch sizes of a folder: the visible set's must not be repeated. */
  private static Set<Integer> trainBatchSizes(GoldenCases.Scan scan) {
    return scan.ofKind(Set.of("bn_warmup")).stream()
        .map(c -> c.get("train_batches").get(0).size())
        .collect(Collectors.toSet());
  }

  private void generate(Path dir) throws IOException, InterruptedException {
    Path log = tmp.resolve("make_cases.log");
    Process p =
        new ProcessBuilder(
                "python3",
                "../testdata/make_cases.py",
                dir.toString(),
                "--check-port",
                GoldenCases.REPOSITORY_COPY.resolve("bn_warmup_cnn.json").toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    if (!p.waitFor(3, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IllegalStateException("make_cases.py did not finish in 3 minutes");
    }
    if (p.exitValue() != 0) {
      throw new IllegalStateException(
          "testdata/make_cases.py failed; it needs python3 with torch"
              + " (python3 -m pip install torch numpy):\n"
              + Files.readString(log, StandardCharsets.UTF_8));
    }
  }
}
