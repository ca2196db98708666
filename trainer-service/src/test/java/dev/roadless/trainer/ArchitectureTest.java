package dev.roadless.trainer;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The trainer service stands on common and the optimizer's SDK: it never imports the optimizer
 * server's packages or another service's, and its packages form no cycle. (Its tests may start a
 * real optimizer server; its main code may not know one.)
 */
class ArchitectureTest {
  private static final JavaClasses MAIN =
      new ClassFileImporter().importPath(Path.of("target", "classes"));

  @Test
  void trainer_importsNoOtherServiceInternals() {
    noClasses()
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.roadless.optimizer.core..",
            "dev.roadless.optimizer.run..",
            "dev.roadless.optimizer.server..",
            "dev.roadless.optimizer.store..",
            "dev.roadless.optimizer.transport..",
            "dev.roadless.checkpoint..",
            "dev.roadless.deploy..")
        .check(MAIN);
  }

  @Test
  void packages_formNoCycle() {
    slices().matching("dev.roadless.trainer.(*)..").should().beFreeOfCycles().check(MAIN);
  }
}
