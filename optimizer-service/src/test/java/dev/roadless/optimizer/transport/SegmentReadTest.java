package dev.roadless.optimizer.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ReplicaMean;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.optimizer.shm.MappedFloats;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server's checked reads of a mapped region larger than one 1 GiB window: values that cross the
 * window edge are copied, averaged and checked in the right places by the one replica mean. The
 * file is sparse.
 */
class SegmentReadTest {
  @Test
  void checkedReads_acrossTheWindowEdge_copyAverageAndFindTheNaN(@TempDir Path dir)
      throws Exception {
    long window = 1L << 28; // floats per mapping
    long length = window + 1000;
    try (FileChannel ch =
            FileChannel.open(
                dir.resolve("region"),
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        ScheduleFreeOptimizer chunks =
            new ScheduleFreeOptimizer(
                Variant.SGD,
                List.of(TensorSpec.of("t", 300)),
                List.of(new GroupSpec("g", List.of("t"), Hyperparameters.defaults(Variant.SGD))),
                1)) {
      MappedFloats region = new MappedFloats(ch, 64, length);
      float[] values = new float[300];
      for (int i = 0; i < values.length; i++) {
        values[i] = i + 0.5f;
      }
      long at = window - 100; // 100 floats in the first window, 200 in the second
      region.put(at, values, 0, values.length);
      ReplicaMean.Input mapped = input(region, at);
      float[][] checked = {new float[values.length]};
      assertEquals(
          ReplicaMean.FINITE,
          ReplicaMean.into(chunks, new ReplicaMean.Input[] {mapped}, checked, true));
      assertArrayEquals(values, checked[0]);
      float[] other = new float[values.length];
      java.util.Arrays.fill(other, 1.5f);
      float[][] mean = {new float[values.length]};
      ReplicaMean.Input[] both = {mapped, ReplicaMean.of(new float[][] {other})};
      assertEquals(ReplicaMean.FINITE, ReplicaMean.into(chunks, both, mean, true));
      for (int i = 0; i < mean[0].length; i++) {
        assertEquals((values[i] + 1.5f) / 2f, mean[0][i]);
      }
      values[250] = Float.NaN; // in the second window
      region.put(at, values, 0, values.length);
      assertEquals(250, ReplicaMean.into(chunks, new ReplicaMean.Input[] {mapped}, checked, true));
      assertEquals(250, ReplicaMean.into(chunks, both, mean, true));
      assertTrue(Float.isNaN(mapped.valueAt(0, 250)));
      assertEquals(249.5f, mapped.valueAt(0, 249));
    }
  }

  /** Tensor 0 of a segment whose gradient region starts at float {@code at} of {@code region}. */
  private static ReplicaMean.Input input(MappedFloats region, long at) {
    return new ReplicaMean.Input() {
      @Override
      public float[] array(int tensor) {
        return null;
      }

      @Override
      public void read(int tensor, int from, float[] dst, int to, int n) {
        region.get(at + from, dst, to, n);
      }

      @Override
      public float valueAt(int tensor, int element) {
        float[] one = new float[1];
        region.get(at + element, one, 0, 1);
        return one[0];
      }
    };
  }
}
