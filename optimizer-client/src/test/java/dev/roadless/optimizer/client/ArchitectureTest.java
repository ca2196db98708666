package dev.roadless.optimizer.client;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The SDK stands on common and the protos only: it never reaches into the optimizer server it talks
 * to, nor into another service, and its packages form no cycle.
 */
class ArchitectureTest {
  private static final JavaClasses MAIN =
      new ClassFileImporter().importPath(Path.of("target", "classes"));

  @Test
  void sdk_importsNoServerOrService() {
    noClasses()
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.roadless.optimizer.core..",
            "dev.roadless.optimizer.run..",
            "dev.roadless.optimizer.server..",
            "dev.roadless.optimizer.store..",
            "dev.roadless.optimizer.transport..",
            "dev.roadless.trainer..",
            "dev.roadless.checkpoint..",
            "dev.roadless.deploy..")
        .check(MAIN);
  }

  @Test
  void packages_formNoCycle() {
    slices().matching("dev.roadless.optimizer.(*)..").should().beFreeOfCycles().check(MAIN);
  }
}
