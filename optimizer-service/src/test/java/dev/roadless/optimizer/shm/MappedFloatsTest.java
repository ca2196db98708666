package dev.roadless.optimizer.shm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A region larger than one 1 GiB mapping window: copies that cross the window edge land in the
 * right places. The file is sparse, so only the pages touched take memory.
 */
class MappedFloatsTest {
  @Test
  void copiesAcrossTheWindowEdge(@TempDir Path dir) throws Exception {
    long window = 1L << 28; // floats per mapping
    long length = window + 1000;
    try (FileChannel ch =
        FileChannel.open(
            dir.resolve("region"),
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.READ,
            StandardOpenOption.WRITE)) {
      MappedFloats region = new MappedFloats(ch, 64, length);
      assertEquals(length, region.length());
      float[] values = new float[300];
      for (int i = 0; i < values.length; i++) {
        values[i] = i + 0.5f;
      }
      long at = window - 100; // 100 floats in the first window, 200 in the second
      region.put(at, values, 0, values.length);
      float[] back = new float[values.length];
      region.get(at, back, 0, back.length);
      assertArrayEquals(values, back);
      float[] one = new float[1];
      region.get(window, one, 0, 1);
      assertEquals(100.5f, one[0]);
      region.get(window - 1, one, 0, 1);
      assertEquals(99.5f, one[0]);
      float[] checked = new float[values.length];
      assertTrue(region.getBounded(at, checked, 0, checked.length));
      assertArrayEquals(values, checked);
      float[] other = new float[values.length];
      java.util.Arrays.fill(other, 1.5f);
      float[] mean = new float[values.length];
      assertTrue(region.meanOfTwo(at, other, mean, 0, mean.length));
      for (int i = 0; i < mean.length; i++) {
        assertEquals((values[i] + 1.5f) / 2f, mean[i]);
      }
      values[250] = Float.NaN; // in the second window
      region.put(at, values, 0, values.length);
      assertFalse(region.getBounded(at, checked, 0, checked.length));
      assertFalse(region.meanOfTwo(at, other, mean, 0, mean.length));
      assertTrue(region.getBounded(at, checked, 0, 250));
      assertThrows(IndexOutOfBoundsException.class, () -> region.get(length - 1, back, 0, 2));
      assertThrows(IndexOutOfBoundsException.class, () -> region.put(-1, values, 0, 1));
    }
  }
}
