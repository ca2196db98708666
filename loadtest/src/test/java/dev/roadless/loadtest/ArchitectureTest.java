package dev.roadless.loadtest;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The tool talks to the server through the SDK like any trainer: it never imports the server's
 * internals or another service. And its files stay small.
 */
class ArchitectureTest {
  @Test
  void tool_importsNoServerOrService() {
    noClasses()
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.roadless.optimizer",
            "dev.roadless.optimizer.core..",
            "dev.roadless.optimizer.run..",
            "dev.roadless.optimizer.server..",
            "dev.roadless.optimizer.store..",
            "dev.roadless.optimizer.config..",
            "dev.roadless.trainer..",
            "dev.roadless.checkpoint..",
            "dev.roadless.deploy..")
        .check(new ClassFileImporter().importPath(Path.of("target", "classes")));
  }

  @Test
  void sources_anyFile_hasAtMost400Lines() throws IOException {
    try (Stream<Path> files = Files.walk(Path.of("src"))) {
      List<String> big =
          files
              .filter(p -> p.toString().endsWith(".java"))
              .filter(p -> lines(p) > 400)
              .map(Path::toString)
              .toList();
      assertTrue(big.isEmpty(), "over 400 lines: " + big);
    }
  }

  private static long lines(Path p) {
    try (Stream<String> s = Files.lines(p)) {
      return s.count();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
