package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.shm.MappedFloats;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server's checked reads of a mapped region larger than one 1 GiB window: values that cross the
 * window edge are copied, averaged and checked in the right places. The file is sparse.
 */
class SegmentScansTest {
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
            StandardOpenOption.WRITE)) {
      MappedFloats region = new MappedFloats(ch, 64, length);
      float[] values = new float[300];
      for (int i = 0; i < values.length; i++) {
        values[i] = i + 0.5f;
      }
      long at = window - 100; // 100 floats in the first window, 200 in the second
      region.put(at, values, 0, values.length);
      float[] checked = new float[values.length];
      assertTrue(SegmentScans.getBounded(region, at, checked, 0, checked.length));
      assertArrayEquals(values, checked);
      float[] other = new float[values.length];
      java.util.Arrays.fill(other, 1.5f);
      float[] mean = new float[values.length];
      assertTrue(SegmentScans.meanWith(region, at, other, mean, 0, mean.length));
      for (int i = 0; i < mean.length; i++) {
        assertEquals((values[i] + 1.5f) / 2f, mean[i]);
      }
      values[250] = Float.NaN; // in the second window
      region.put(at, values, 0, values.length);
      assertFalse(SegmentScans.getBounded(region, at, checked, 0, checked.length));
      assertFalse(SegmentScans.meanWith(region, at, other, mean, 0, mean.length));
      assertTrue(SegmentScans.getBounded(region, at, checked, 0, 250));
    }
  }
}
