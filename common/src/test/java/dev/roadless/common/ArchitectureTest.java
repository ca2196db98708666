package dev.roadless.common;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * common is the bottom of the house above the protos: it knows no service and no client, and its
 * packages form no cycle.
 */
class ArchitectureTest {
  private static final JavaClasses MAIN =
      new ClassFileImporter().importPath(Path.of("target", "classes"));

  @Test
  void common_importsNoServiceOrClient() {
    noClasses()
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.roadless.optimizer..",
            "dev.roadless.trainer..",
            "dev.roadless.checkpoint..",
            "dev.roadless.deploy..")
        .check(MAIN);
  }

  @Test
  void packages_formNoCycle() {
    slices().matching("dev.roadless.common.(*)..").should().beFreeOfCycles().check(MAIN);
  }
}
