package dev.roadless.optimizer.shm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
      assertThrows(IndexOutOfBoundsException.class, () -> region.get(length - 1, back, 0, 2));
      assertThrows(IndexOutOfBoundsException.class, () -> region.put(-1, values, 0, 1));
    }
  }
}
