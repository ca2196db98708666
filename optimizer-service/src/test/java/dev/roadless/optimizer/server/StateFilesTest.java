package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A run's state through the one state codec, as snapshots store it: exact, and never half read. */
class StateFilesTest {

  /** A small AdamW state with inner momentum (so every array kind is present) after 3 steps. */
  private static OptimizerState sampleState() {
    Hyperparameters hp =
        Hyperparameters.defaults(Variant.ADAMW).toBuilder()
            .innerMomentum(0.9)
            .warmupSteps(2)
            .weightDecay(0.1)
            .build();
    try (ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.ADAMW,
            List.of(TensorSpec.of("w", 70000), TensorSpec.of("b", 3)),
            List.of(
                new GroupSpec("g", List.of("w"), hp),
                new GroupSpec("h", List.of("b"), hp.withLr(0.5))),
            1)) {
      float[] w = new float[70000];
      Arrays.setAll(new double[w.length], i -> w[i] = (float) Math.sin(i));
      opt.setInitialValues(Map.of("w", w, "b", new float[] {1, -2, 3}));
      for (int s = 0; s < 3; s++) {
        float[] gw = new float[w.length];
        for (int i = 0; i < gw.length; i++) {
          gw[i] = (float) Math.cos(i * (s + 1));
        }
        opt.step(Map.of("w", new float[][] {gw}, "b", new float[][] {{0.5f, 0, -1}}));
      }
      return opt.exportState();
    }
  }

  @Test
  void encodeDecode_roundTrip_restoresEveryBitAndScalar() throws IOException {
    OptimizerState s = sampleState();
    OptimizerState back = StateFiles.decode(StateFiles.encode(s));
    assertEquals(s.variant(), back.variant());
    assertEquals(s.tensors(), back.tensors());
    assertEquals(s.groups(), back.groups()); // record equality compares doubles bitwise
    assertEquals(s.initialized(), back.initialized());
    for (int t = 0; t < s.tensorStates().size(); t++) {
      OptimizerState.TensorState a = s.tensorStates().get(t);
      OptimizerState.TensorState b = back.tensorStates().get(t);
      assertEquals(a.name(), b.name());
      assertArrayEquals(bits(a.z()), bits(b.z()));
      assertArrayEquals(bits(a.x()), bits(b.x()));
      assertArrayEquals(bits(a.v()), bits(b.v()));
      assertArrayEquals(bits(a.m()), bits(b.m()));
    }
  }

  @Test
  void read_streamWithTrailingData_leavesItUnread() throws IOException {
    byte[] one = StateFiles.encode(sampleState());
    byte[] two = Arrays.copyOf(one, one.length + 5);
    ByteArrayInputStream in = new ByteArrayInputStream(two);
    StateFiles.read(in);
    assertEquals(5, in.available());
    assertThrows(IOException.class, () -> StateFiles.decode(two));
  }

  @Test
  void decode_truncatedAnywhere_throwsIOException() {
    byte[] full = StateFiles.encode(sampleState());
    int[] cuts = {
      0, 3, 8, 15, 40, full.length / 3, full.length / 2, full.length - 5, full.length - 1
    };
    for (int cut : cuts) {
      byte[] part = Arrays.copyOf(full, cut);
      IOException e = assertThrows(IOException.class, () -> StateFiles.decode(part), "cut " + cut);
      assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }
  }

  @Test
  void decode_singleBitFlippedAnywhere_throwsIOException() {
    byte[] full = StateFiles.encode(sampleState());
    int[] positions = {0, 9, 13, 20, 100, 300, full.length / 2, full.length - 10, full.length - 1};
    for (int pos : positions) {
      for (int bit : new int[] {0, 7}) {
        byte[] bad = full.clone();
        bad[pos] ^= (byte) (1 << bit);
        assertThrows(
            IOException.class, () -> StateFiles.decode(bad), "byte " + pos + " bit " + bit);
      }
    }
  }

  @Test
  void decode_otherVersion_throwsIOExceptionNamingVersion() {
    byte[] bad =
        StateFiles.encode(
            sampleState(),
            m ->
                m.hasHeader()
                    ? m.toBuilder().setHeader(m.getHeader().toBuilder().setFormatVersion(2)).build()
                    : m);
    IOException e = assertThrows(IOException.class, () -> StateFiles.decode(bad));
    assertTrue(e.getMessage().contains("version 2"), e.getMessage());
  }

  private static int[] bits(float[] a) {
    if (a == null) {
      return null;
    }
    int[] b = new int[a.length];
    for (int i = 0; i < a.length; i++) {
      b[i] = Float.floatToRawIntBits(a[i]);
    }
    return b;
  }
}
