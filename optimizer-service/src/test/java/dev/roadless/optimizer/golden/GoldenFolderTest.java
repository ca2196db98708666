package dev.roadless.optimizer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.testing.GoldenCases;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.TestAbortedException;

/** The optimizer suite on folders other than the repository's: notes, other kinds, no cases. */
class GoldenFolderTest {
  @TempDir Path tmp;

  private void copy(String golden) throws IOException {
    Files.copy(GoldenCases.REPOSITORY_COPY.resolve(golden), tmp.resolve(golden));
  }

  @Test
  void cases_realCasesAmongNotesAndOtherKinds_runOnlyTheOptimizerCases() throws Throwable {
    copy("sgd_ref_d.json");
    copy("wrap_ref_sgd.json");
    copy("bn1d_cma.json");
    copy("FORMAT.md");
    Files.writeString(tmp.resolve("README.md"), "# cases from elsewhere\n");
    Files.writeString(tmp.resolve("notes.txt"), "regenerated on Tuesday\n");
    Files.writeString(tmp.resolve("manifest.json"), "{\"files\": [\"sgd_ref_d.json\"]}");
    Files.writeString(tmp.resolve("tokenizer.json"), "{\"format_version\": 1, \"kind\": \"bpe\"}");

    List<DynamicTest> tests = GoldenOptimizerTest.cases(tmp).toList();

    assertEquals(
        List.of("sgd_ref_d", "wrap_ref_sgd"), tests.stream().map(t -> t.getDisplayName()).toList());
    for (DynamicTest t : tests) {
      t.getExecutable().execute();
    }
  }

  @Test
  void cases_folderWithOtherKindsOnly_yieldOneSkippedTest() throws IOException {
    copy("bn1d_cma.json");

    List<DynamicTest> tests = GoldenOptimizerTest.cases(tmp).toList();

    assertEquals(1, tests.size());
    assertThrows(TestAbortedException.class, () -> tests.get(0).getExecutable().execute());
  }

  @Test
  void cases_folderWithoutAnyCase_fails() throws IOException {
    Files.writeString(tmp.resolve("README.md"), "nothing here\n");

    assertThrows(IllegalStateException.class, () -> GoldenOptimizerTest.cases(tmp));
  }

  @Test
  void cases_optimizerCaseOfAnotherFormatVersion_fails() throws IOException {
    Files.writeString(tmp.resolve("next.json"), "{\"format_version\": 2, \"kind\": \"optimizer\"}");

    assertThrows(IllegalStateException.class, () -> GoldenOptimizerTest.cases(tmp));
  }

  @Test
  void compare_errorOfOneAndAHalfAtolNearZero_failsInShortRunsAndPassesInLongOnes() {
    float[] ref = {0f, 1f};
    float[] ours = {1.5e-6f, 1f};
    ErrorStats shortRun = new ErrorStats(ErrorStats.SHORT_RUN_STEPS);
    shortRun.compare("y", ours, ref);
    ErrorStats longRun = new ErrorStats(ErrorStats.SHORT_RUN_STEPS + 1);
    longRun.compare("y", ours, ref);

    assertEquals(1, shortRun.failures().size());
    assertEquals(List.of(), longRun.failures());
  }
}
