package dev.roadless.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class ObjectiveTest {
  @Test
  void parseAll_twoObjectivesWithUnits_readsPercentileAndLimit() {
    assertEquals(
        List.of(
            new Objective("step", 99.9, Duration.ofMillis(250)),
            new Objective("Train", 50, Duration.ofNanos(1500))),
        Objective.parseAll("step:p99.9<=250ms, Train:p50<=1.5us"));
  }

  @Test
  void parseAll_missingUnit_isRefusedNamingTheFlag() {
    var e = assertThrows(IllegalArgumentException.class, () -> Objective.parseAll("step:p99<=250"));
    assertEquals(true, e.getMessage().contains("250"));
  }

  @Test
  void parseAll_empty_givesNone() {
    assertEquals(List.of(), Objective.parseAll(""));
  }
}
