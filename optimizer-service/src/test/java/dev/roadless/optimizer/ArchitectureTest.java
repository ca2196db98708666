package dev.roadless.optimizer;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.type;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import dev.roadless.proto.common.v1.ErrorReason;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The optimizer server's floors, from the wire down: {@code server} (gRPC adapters: validate, map
 * proto to domain, map errors) over {@code transport} (shared memory) and {@code store} (snapshots)
 * over {@code run} (the serving protocol on its own {@code RunConfig}) over {@code core} (the math
 * on float arrays). Each floor uses only the floors below it; the core knows neither gRPC nor the
 * protos, and the run layer knows of the protos only the {@link ErrorReason} its refusals carry.
 */
class ArchitectureTest {
  private static final JavaClasses MAIN =
      new ClassFileImporter().importPath(Path.of("target", "classes"));

  @Test
  void layers_dependOnlyDownward() {
    layeredArchitecture()
        .consideringOnlyDependenciesInLayers()
        .layer("wiring")
        .definedBy("dev.roadless.optimizer", "dev.roadless.optimizer.config..")
        .layer("server")
        .definedBy("dev.roadless.optimizer.server..")
        .layer("transport")
        .definedBy("dev.roadless.optimizer.transport..")
        .layer("store")
        .definedBy("dev.roadless.optimizer.store..")
        .layer("run")
        .definedBy("dev.roadless.optimizer.run..")
        .layer("core")
        .definedBy("dev.roadless.optimizer.core..")
        .whereLayer("wiring")
        .mayNotBeAccessedByAnyLayer()
        .whereLayer("server")
        .mayOnlyBeAccessedByLayers("wiring")
        .whereLayer("transport")
        .mayOnlyBeAccessedByLayers("server", "wiring")
        .whereLayer("store")
        .mayOnlyBeAccessedByLayers("server", "wiring")
        .whereLayer("run")
        .mayOnlyBeAccessedByLayers("transport", "server", "wiring")
        .whereLayer("core")
        .mayOnlyBeAccessedByLayers("run", "transport", "server", "wiring")
        .check(MAIN);
  }

  @Test
  void core_dependsOnTheJdkAlone() {
    classes()
        .that()
        .resideInAPackage("dev.roadless.optimizer.core..")
        .should()
        .onlyDependOnClassesThat()
        .resideInAnyPackage("java..", "jdk.incubator.vector..", "dev.roadless.optimizer.core..", "")
        .check(MAIN);
  }

  @Test
  void run_knowsNoGrpcAndOfTheProtosOnlyErrorReason() {
    noClasses()
        .that()
        .resideInAnyPackage("dev.roadless.optimizer.run..", "dev.roadless.optimizer.transport..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("io.grpc..", "com.google.protobuf..")
        .orShould()
        .dependOnClassesThat(
            resideInAnyPackage("dev.roadless.proto..").and(not(type(ErrorReason.class))))
        .check(MAIN);
  }

  @Test
  void packages_formNoCycle() {
    slices().matching("dev.roadless.optimizer.(*)..").should().beFreeOfCycles().check(MAIN);
  }
}
