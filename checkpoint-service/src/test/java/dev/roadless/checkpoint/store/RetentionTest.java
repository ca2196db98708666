package dev.roadless.checkpoint.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Which checkpoints the retention policy keeps. */
class RetentionTest {
  private static final List<Manifest> CHECKPOINTS =
      List.of(
          eval("s100", 100, 0.90, 0.35),
          eval("s200", 200, 0.97, 0.30),
          eval("s300", 300, 0.95, 0.10),
          eval("s400", 400, 0.94, 0.20));

  @Test
  void toDelete_keepLastZero_keepsEverything() {
    assertEquals(List.of(), new Retention(0, Retention.BestMetric.ACCURACY).toDelete(CHECKPOINTS));
  }

  @Test
  void toDelete_keepLastTwo_deletesTheOldest() {
    assertEquals(
        List.of("s200", "s100"), new Retention(2, Retention.BestMetric.NONE).toDelete(CHECKPOINTS));
  }

  @Test
  void toDelete_keepLastOneAndBest_keepsNewestAndBestByMetric() {
    assertEquals(
        List.of("s300", "s100"),
        new Retention(1, Retention.BestMetric.ACCURACY).toDelete(CHECKPOINTS));
    assertEquals(
        List.of("s200", "s100"), new Retention(1, Retention.BestMetric.LOSS).toDelete(CHECKPOINTS));
  }

  @Test
  void parse_unknownMetric_refused() {
    assertEquals(Retention.BestMetric.NONE, Retention.BestMetric.parse(""));
    assertEquals(Retention.BestMetric.LOSS, Retention.BestMetric.parse("loss"));
    assertThrows(IllegalArgumentException.class, () -> Retention.BestMetric.parse("f1"));
  }

  private static Manifest eval(String name, long step, double accuracy, double loss) {
    return new Manifest(
        1,
        name,
        Manifest.EVAL,
        "run",
        step,
        "2024-01-01T00:00:00Z",
        "OPTIMIZER_VARIANT_ADAMW",
        null,
        null,
        new Manifest.Metrics(loss, accuracy, 2000),
        null,
        null,
        List.of(),
        List.of());
  }
}
