package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubernetes.client.openapi.models.V1Deployment;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The strict parser accepts a valid fixture and refuses it with any one mistake put in. */
class StrictYamlTest {
  private static String fixture() throws IOException {
    try (InputStream in = StrictYamlTest.class.getResourceAsStream("/fixtures/deployment.yaml")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  void parseAll_validFixture_yieldsTypedDeployment() throws IOException {
    var documents = StrictYaml.parseAll(fixture());

    assertEquals(1, documents.size());
    var deployment = (V1Deployment) documents.get(0).object();
    var container = deployment.getSpec().getTemplate().getSpec().getContainers().get(0);
    assertEquals(
        "roadless.fixture.v1.FixtureService", container.getReadinessProbe().getGrpc().getService());
    assertEquals("250m", container.getResources().getRequests().get("cpu").toSuffixedString());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
          """
          misspelled field      | readinessProbe:     | readinesProbe:         | readinesProbe
          unknown nested field  | service: roadless   | servic: roadless       | servic
          string for an integer | replicas: 1         | replicas: "1"          | spec.replicas
          list for a quantity   | cpu: 250m           | cpu: [250m]            | requests.cpu
          number for a quantity | cpu: 250m           | cpu: 1                 | requests.cpu
          unknown kind          | kind: Deployment    | kind: Deploymnet       | Deploymnet
          unknown apiVersion    | apiVersion: apps/v1 | apiVersion: apps/v9    | apps/v9
          duplicate key         | replicas: 1         | replicas: 1\\n  replicas: 2 | duplicate key
          missing required name | '- name: fixture\\n          image' | '- image' | name
          """)
  void parseAll_oneMistake_isRefusedNamingIt(String mistake, String from, String to, String named)
      throws IOException {
    String valid = fixture();
    String broken = valid.replace(from.replace("\\n", "\n"), to.replace("\\n", "\n"));
    assertNotEquals(valid, broken, "the mutation must change the fixture");

    ManifestException e = assertThrows(ManifestException.class, () -> StrictYaml.parseAll(broken));

    assertTrue(
        e.getMessage().contains(named),
        mistake + ": message should name '" + named + "': " + e.getMessage());
  }

  @Test
  void parseAll_documentThatIsNotAMapping_isRefused() {
    assertThrows(ManifestException.class, () -> StrictYaml.parseAll("- just\n- a list\n"));
  }
}
