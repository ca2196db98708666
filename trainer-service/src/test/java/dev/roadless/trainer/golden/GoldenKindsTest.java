package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every golden file is of a kind some suite runs: the trainer's four kinds here, {@code optimizer}
 * in the optimizer service. A new kind must fail loudly instead of being skipped.
 */
class GoldenKindsTest {
  static final Set<String> TRAINER_KINDS =
      Set.of("batchnorm", "gradcheck_mlp", "gradcheck_cnn", "bn_warmup");
  static final Set<String> OTHER_SUITES = Set.of("optimizer");

  @Test
  void goldenDirectory_everyKind_isRunBySomeSuite() throws IOException {
    Set<String> unknown = new TreeSet<>();
    ObjectMapper json = new ObjectMapper();
    try (Stream<Path> files = Files.list(GoldenFiles.dir())) {
      for (Path f : files.filter(p -> p.toString().endsWith(".json")).toList()) {
        String kind = json.readTree(f.toFile()).path("kind").asText();
        if (!TRAINER_KINDS.contains(kind) && !OTHER_SUITES.contains(kind)) {
          unknown.add(f.getFileName() + " (" + kind + ")");
        }
      }
    }
    assertEquals(Set.of(), unknown, "golden cases of a kind no suite runs");
  }
}
