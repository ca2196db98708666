package dev.roadless.trainer.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxDatasetTest {
  private static byte[] images(int magic, int count, int rows, int cols, int dataBytes) {
    ByteBuffer b = ByteBuffer.allocate(16 + dataBytes);
    b.putInt(magic).putInt(count).putInt(rows).putInt(cols);
    for (int i = 0; i < dataBytes; i++) {
      b.put((byte) (i * 37));
    }
    return b.array();
  }

  private static byte[] labels(int count, int... values) {
    ByteBuffer b = ByteBuffer.allocate(8 + values.length);
    b.putInt(0x00000801).putInt(count);
    for (int v : values) {
      b.put((byte) v);
    }
    return b.array();
  }

  private static byte[] gzip(byte[] raw) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(raw);
    }
    return out.toByteArray();
  }

  private static IdxDataset read(byte[] img, byte[] lab) throws IOException {
    return IdxDataset.read(
        new ByteArrayInputStream(img), "img", new ByteArrayInputStream(lab), "lab");
  }

  @Test
  void bundledMnist_hasTheExpectedSplits() {
    IdxDataset train = Mnist.train();
    IdxDataset holdout = Mnist.holdout();
    assertEquals(8000, train.size());
    assertEquals(2000, holdout.size());
    assertEquals(28, train.rows());
    assertEquals(28, train.cols());
    assertEquals(10, train.classes());
    assertEquals(10, holdout.classes());
    Batch b = train.range(0, 3);
    assertEquals(3 * 784, b.inputs().length);
    float max = 0;
    for (float v : b.inputs()) {
      assertTrue(v >= 0 && v <= 1);
      max = Math.max(max, v);
    }
    assertEquals(1f, max, 1e-6f); // real digits reach full ink
  }

  @Test
  void load_rawAndGzipFiles_giveTheSameData(@TempDir Path dir) throws IOException {
    byte[] img = images(0x00000803, 2, 2, 3, 12);
    byte[] lab = labels(2, 4, 7);
    Files.write(dir.resolve("i.raw"), img);
    Files.write(dir.resolve("l.raw"), lab);
    Files.write(dir.resolve("i.gz"), gzip(img));
    Files.write(dir.resolve("l.gz"), gzip(lab));
    IdxDataset raw = IdxDataset.load(dir.resolve("i.raw"), dir.resolve("l.raw"));
    IdxDataset gz = IdxDataset.load(dir.resolve("i.gz"), dir.resolve("l.gz"));
    assertEquals(2, raw.size());
    assertEquals(7, gz.label(1));
    assertEquals(Byte.toUnsignedInt(img[16 + 6]) / 255f, gz.batch(new int[] {1}).inputs()[0]);
    assertEquals(raw.batch(new int[] {0, 1}).labels()[0], gz.batch(new int[] {0, 1}).labels()[0]);
  }

  @Test
  void read_badMagic_namesTheFile() {
    IOException e =
        assertThrows(
            IdxDataset.IdxFormatException.class,
            () -> read(images(0x00000801, 1, 1, 1, 1), labels(1, 0)));
    assertTrue(e.getMessage().contains("img: magic number 0x00000801"), e.getMessage());
    e =
        assertThrows(
            IdxDataset.IdxFormatException.class,
            () -> read(images(0x00000803, 1, 1, 1, 1), images(0x00000803, 1, 1, 1, 1)));
    assertTrue(e.getMessage().startsWith("lab: magic number"), e.getMessage());
  }

  @Test
  void read_truncatedOrTrailingData_isRefused() {
    IOException e =
        assertThrows(
            IdxDataset.IdxFormatException.class,
            () -> read(images(0x00000803, 2, 2, 2, 7), labels(2, 0, 1)));
    assertTrue(e.getMessage().contains("shorter than its header"), e.getMessage());
    e =
        assertThrows(
            IdxDataset.IdxFormatException.class,
            () -> read(images(0x00000803, 1, 2, 2, 5), labels(1, 0)));
    assertTrue(e.getMessage().contains("trailing bytes"), e.getMessage());
    assertThrows(
        IdxDataset.IdxFormatException.class, () -> read(new byte[] {0, 0, 8}, labels(1, 0)));
  }

  @Test
  void read_countMismatch_isRefused() {
    IOException e =
        assertThrows(
            IdxDataset.IdxFormatException.class,
            () -> read(images(0x00000803, 2, 1, 1, 2), labels(3, 0, 1, 2)));
    assertTrue(e.getMessage().contains("3 labels but img 2 images"), e.getMessage());
  }
}
