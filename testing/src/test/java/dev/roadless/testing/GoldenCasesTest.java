package dev.roadless.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.TestAbortedException;

/**
 * How a golden folder is read ({@link GoldenCases}): files that are not cases are ignored, broken
 * cases and folders without any case fail, a suite whose kinds are absent is skipped.
 */
class GoldenCasesTest {
  @TempDir Path tmp;

  @Test
  void scan_realCasesAmongNotes_returnsOnlyTheCasesByKind() throws IOException {
    Path src = GoldenCases.REPOSITORY_COPY;
    for (String c : List.of("bn1d_momentum01", "bn2d_cma", "gradcheck_mlp")) {
      Files.copy(src.resolve(c + ".json"), tmp.resolve(c + ".json"));
    }
    Files.copy(src.resolve("FORMAT.md"), tmp.resolve("FORMAT.md"));
    Files.writeString(tmp.resolve("README.md"), "# cases from elsewhere\n");
    Files.writeString(tmp.resolve("notes.txt"), "regenerated on Tuesday\n");
    Files.writeString(tmp.resolve("manifest.json"), "{\"files\": [\"bn2d_cma.json\"]}");
    Files.writeString(tmp.resolve("list.json"), "[1, 2, 3]");
    Files.writeString(
        tmp.resolve("tokenizer.json"), "{\"format_version\": 1, \"kind\": \"tokenizer\"}");
    Files.createDirectory(tmp.resolve("old"));

    GoldenCases.Scan scan = GoldenCases.scan(tmp);

    assertEquals(
        List.of("batchnorm", "batchnorm", "gradcheck_mlp", "tokenizer"),
        scan.cases().stream().map(c -> c.get("kind").asText()).toList());
    assertEquals(
        List.of(
            "FORMAT.md",
            "README.md",
            "list.json (no kind/format_version)",
            "manifest.json (no kind/format_version)",
            "notes.txt"),
        scan.ignored());
    List<JsonNode> batchnorm = GoldenCases.ofKind(tmp, "batchnorm");
    assertEquals(2, batchnorm.size());
    List<JsonNode> gradcheck = GoldenCases.ofKind(tmp, "gradcheck_mlp", "gradcheck_cnn");
    assertEquals(1, gradcheck.size());
  }

  @Test
  void tests_folderWithCasesOfOtherKindsOnly_yieldOneSkippedTest() throws IOException {
    Files.copy(GoldenCases.REPOSITORY_COPY.resolve("bn2d_cma.json"), tmp.resolve("bn2d_cma.json"));

    List<DynamicTest> tests = GoldenCases.tests(tmp, c -> {}, "bn_warmup").toList();

    assertEquals(1, tests.size());
    assertThrows(TestAbortedException.class, () -> tests.get(0).getExecutable().execute());
  }

  @Test
  void scan_folderWithoutAnyCase_fails() throws IOException {
    Files.writeString(tmp.resolve("README.md"), "nothing here\n");
    Files.writeString(tmp.resolve("manifest.json"), "{}");

    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> GoldenCases.scan(tmp));
    assertTrue(e.getMessage().startsWith("no golden case at all"), e.getMessage());
  }

  @Test
  void scan_jsonFileThatDoesNotParse_fails() throws IOException {
    Files.copy(GoldenCases.REPOSITORY_COPY.resolve("bn2d_cma.json"), tmp.resolve("bn2d_cma.json"));
    Files.writeString(tmp.resolve("truncated.json"), "{\"format_version\": 1, \"kind\": \"batch");

    assertThrows(IllegalStateException.class, () -> GoldenCases.scan(tmp));
  }

  @Test
  void ofKind_caseOfTheSuitesKindWithAnotherFormatVersion_fails() throws IOException {
    Files.writeString(
        tmp.resolve("future.json"), "{\"format_version\": 2, \"kind\": \"batchnorm\"}");
    Files.writeString(
        tmp.resolve("other.json"), "{\"format_version\": 2, \"kind\": \"tokenizer\"}");
    GoldenCases.Scan scan = GoldenCases.scan(tmp);

    assertEquals(List.of(), scan.ofKind(Set.of("gradcheck_mlp")));
    assertThrows(IllegalStateException.class, () -> scan.ofKind(Set.of("batchnorm")));
  }
}
