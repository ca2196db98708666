package dev.roadless.trainer.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Labelled images in the MNIST IDX format: an image file ({@code idx3-ubyte}: magic {@code
 * 0x00000803}, then count, rows, cols as big-endian int32, then count*rows*cols unsigned bytes) and
 * a label file ({@code idx1-ubyte}: magic {@code 0x00000801}, count, then count bytes). Either may
 * be gzip-compressed (detected by its first bytes). Immutable.
 *
 * <p>Examples come out as {@link Batch}es of shape {@code [n, 1, rows, cols]} with pixels scaled to
 * [0, 1] ({@code byte/255}); a flat model reads the same data as {@code [n, rows*cols]}.
 */
public final class IdxDataset {
  private static final int IMAGES_MAGIC = 0x00000803;
  private static final int LABELS_MAGIC = 0x00000801;
  private static final int MAX_SIDE = 4096;

  private final byte[] pixels;
  private final byte[] labels;
  private final int rows;
  private final int cols;
  private final int classes;

  private IdxDataset(byte[] pixels, byte[] labels, int rows, int cols) {
    this.pixels = pixels;
    this.labels = labels;
    this.rows = rows;
    this.cols = cols;
    int max = 0;
    for (byte b : labels) {
      max = Math.max(max, Byte.toUnsignedInt(b));
    }
    this.classes = max + 1;
  }

  /**
   * Reads an image file and a label file (each raw or gzip). Neither may be a symbolic link (it is
   * opened with {@code O_NOFOLLOW}); {@link DatasetRoots#resolve} gives paths that are not.
   */
  public static IdxDataset load(Path images, Path labels) throws IOException {
    try (InputStream i = Files.newInputStream(images, LinkOption.NOFOLLOW_LINKS);
        InputStream l = Files.newInputStream(labels, LinkOption.NOFOLLOW_LINKS)) {
      return read(i, images.toString(), l, labels.toString());
    }
  }

  /**
   * Reads from streams; the names appear in error messages.
   *
   * @throws IdxFormatException if a magic number, a size or the file length is wrong, or the two
   *     files disagree on the number of examples
   */
  public static IdxDataset read(
      InputStream images, String imagesName, InputStream labels, String labelsName)
      throws IOException {
    DataInputStream in = open(images);
    int[] imageDims = header(in, imagesName, IMAGES_MAGIC, 3);
    int count = imageDims[0];
    int rows = imageDims[1];
    int cols = imageDims[2];
    if (rows < 1 || cols < 1 || rows > MAX_SIDE || cols > MAX_SIDE) {
      throw new IdxFormatException(imagesName + ": image size " + rows + "x" + cols);
    }
    long total = (long) count * rows * cols;
    if (total > Integer.MAX_VALUE - 8) {
      throw new IdxFormatException(imagesName + ": " + total + " pixels is too many");
    }
    byte[] pixels = body(in, imagesName, (int) total);

    DataInputStream lin = open(labels);
    int labelCount = header(lin, labelsName, LABELS_MAGIC, 1)[0];
    if (labelCount != count) {
      throw new IdxFormatException(
          labelsName
              + " has "
              + labelCount
              + " labels but "
              + imagesName
              + " "
              + count
              + " images");
    }
    byte[] labelBytes = body(lin, labelsName, count);
    return new IdxDataset(pixels, labelBytes, rows, cols);
  }

  public int size() {
    return labels.length;
  }

  /** The first {@code n} examples (all of them when n >= size). */
  public IdxDataset first(int n) {
    if (n >= size()) {
      return this;
    }
    int size = rows * cols;
    return new IdxDataset(
        java.util.Arrays.copyOf(pixels, n * size), java.util.Arrays.copyOf(labels, n), rows, cols);
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  /** 1 + the largest label present. */
  public int classes() {
    return classes;
  }

  public int label(int index) {
    return Byte.toUnsignedInt(labels[index]);
  }

  /** The raw pixels of one image, row-major. */
  public byte[] pixels(int index) {
    int size = rows * cols;
    byte[] out = new byte[size];
    System.arraycopy(pixels, index * size, out, 0, size);
    return out;
  }

  /** The examples at {@code indices}, in that order, pixels scaled to [0, 1]. */
  public Batch batch(int[] indices) {
    int size = rows * cols;
    float[] x = new float[indices.length * size];
    int[] y = new int[indices.length];
    for (int k = 0; k < indices.length; k++) {
      int idx = indices[k];
      if (idx < 0 || idx >= labels.length) {
        throw new IndexOutOfBoundsException("example " + idx + " of " + labels.length);
      }
      for (int j = 0; j < size; j++) {
        x[k * size + j] = Byte.toUnsignedInt(pixels[idx * size + j]) / 255f;
      }
      y[k] = label(idx);
    }
    return new Batch(x, y, indices.length);
  }

  /** Examples {@code [from, to)} in order. */
  public Batch range(int from, int to) {
    int[] idx = new int[to - from];
    for (int i = 0; i < idx.length; i++) {
      idx[i] = from + i;
    }
    return batch(idx);
  }

  private static DataInputStream open(InputStream raw) throws IOException {
    BufferedInputStream in = new BufferedInputStream(raw);
    in.mark(2);
    int b0 = in.read();
    int b1 = in.read();
    in.reset();
    boolean gzip = b0 == 0x1f && b1 == 0x8b;
    return new DataInputStream(gzip ? new BufferedInputStream(new GZIPInputStream(in)) : in);
  }

  private static int[] header(DataInputStream in, String name, int magic, int dims)
      throws IOException {
    try {
      int m = in.readInt();
      if (m != magic) {
        throw new IdxFormatException(
            String.format(
                "%s: magic number 0x%08x, expected 0x%08x (%d-dimensional unsigned bytes)",
                name, m, magic, dims));
      }
      int[] out = new int[dims];
      for (int i = 0; i < dims; i++) {
        out[i] = in.readInt();
        if (out[i] < 0) {
          throw new IdxFormatException(name + ": negative dimension " + out[i]);
        }
      }
      return out;
    } catch (EOFException e) {
      throw new IdxFormatException(name + ": file ends inside its header");
    }
  }

  private static byte[] body(DataInputStream in, String name, int length) throws IOException {
    byte[] out = new byte[length];
    try {
      in.readFully(out);
    } catch (EOFException e) {
      throw new IdxFormatException(
          name + ": file is shorter than its header says (" + length + " bytes of data)");
    }
    if (in.read() != -1) {
      throw new IdxFormatException(name + ": trailing bytes after " + length + " bytes of data");
    }
    return out;
  }

  /** A malformed IDX file. */
  public static final class IdxFormatException extends IOException {
    public IdxFormatException(String message) {
      super(message);
    }
  }
}
