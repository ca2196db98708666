package dev.roadless.optimizer.store;

import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.TensorSpec;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Writes and reads an {@link OptimizerState} as a versioned little-endian binary stream.
 *
 * <p>Format version 1 (all integers and floats little-endian):
 *
 * <pre>
 *   magic          8 bytes   ASCII "RDLSSFOS"
 *   version        u32       1
 *   header length  u32       H, at most 64 MiB
 *   header         H bytes   variant (string), initialized (u8), tensors (count; per tensor
 *                            name, rank, dims as i32), groups (count; per group name, member
 *                            names, the 15 hyperparameters in record order as f64/i64/u8, then
 *                            k i64, weightSum, lrMax, lrK, ck, yBeta as f64), one array mask u8
 *                            per tensor (1 z, 2 x, 4 v, 8 m)
 *   header CRC     u32       CRC32C of every byte from the magic to the end of the header
 *   arrays         f32...    per tensor in order, its present arrays in the order z, x, v, m
 *   trailer CRC    u32       CRC32C of every byte before it
 * </pre>
 *
 * Strings are a u32 byte count and UTF-8 bytes. The header CRC is checked before any array is
 * allocated, so a corrupted size can never trigger a huge allocation; the trailer CRC covers the
 * arrays. Reading returns a state only once every check passed: a truncated or corrupted stream
 * gives an {@link IOException} and never half a state.
 */
public final class StateCodec {
  /** The format version this class writes and reads. */
  public static final int VERSION = 1;

  private static final byte[] MAGIC = "RDLSSFOS".getBytes(StandardCharsets.US_ASCII);
  private static final int MAX_HEADER = 64 << 20;
  private static final int BLOCK = 1 << 16;

  private StateCodec() {}

  /** Writes {@code state} to {@code out}; does not close it. */
  public static void write(OptimizerState state, OutputStream out) throws IOException {
    CRC32C crc = new CRC32C();
    byte[] header = StateHeader.encode(state);
    ByteBuffer prefix = le(MAGIC.length + 8).put(MAGIC).putInt(VERSION).putInt(header.length);
    emit(out, crc, prefix.array(), prefix.position());
    emit(out, crc, header, header.length);
    emit(out, crc, le(4).putInt((int) crc.getValue()).array(), 4);
    ByteBuffer block = le(BLOCK);
    for (OptimizerState.TensorState t : state.tensorStates()) {
      for (float[] a : new float[][] {t.z(), t.x(), t.v(), t.m()}) {
        if (a != null) {
          writeFloats(out, crc, block, a);
        }
      }
    }
    out.write(le(4).putInt((int) crc.getValue()).array());
  }

  /**
   * Reads one state from {@code in}, leaving bytes after it unread.
   *
   * @throws IOException if the stream is truncated, corrupted, of another format or version
   */
  public static OptimizerState read(InputStream in) throws IOException {
    CRC32C crc = new CRC32C();
    ByteBuffer prefix = ByteBuffer.wrap(readFully(in, crc, MAGIC.length + 8, "prefix"));
    prefix.order(ByteOrder.LITTLE_ENDIAN);
    byte[] magic = new byte[MAGIC.length];
    prefix.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      throw new IOException("not a Roadless optimizer state: bad magic");
    }
    int version = prefix.getInt();
    if (version != VERSION) {
      throw new IOException("unsupported optimizer state version " + version + ", expected 1");
    }
    int headerLength = prefix.getInt();
    if (headerLength < 0 || headerLength > MAX_HEADER) {
      throw new IOException("corrupt optimizer state: header length " + headerLength);
    }
    byte[] header = readFully(in, crc, headerLength, "header");
    checkCrc(in, crc, "header");
    StateHeader.Decoded h;
    try {
      h = StateHeader.decode(header);
    } catch (IllegalArgumentException | BufferUnderflowException e) {
      throw new IOException("corrupt optimizer state header: " + e.getMessage(), e);
    }
    List<OptimizerState.TensorState> tensors = new ArrayList<>();
    for (int t = 0; t < h.tensors().size(); t++) {
      TensorSpec spec = h.tensors().get(t);
      int n = (int) spec.numel();
      int mask = h.arrayMasks()[t];
      float[] z = readFloats(in, crc, n);
      float[] x = readFloats(in, crc, n);
      float[] v = (mask & StateHeader.V) != 0 ? readFloats(in, crc, n) : null;
      float[] m = (mask & StateHeader.M) != 0 ? readFloats(in, crc, n) : null;
      tensors.add(new OptimizerState.TensorState(spec.name(), z, x, v, m));
    }
    checkCrc(in, crc, "arrays");
    try {
      return new OptimizerState(h.variant(), h.tensors(), h.groups(), tensors, h.initialized());
    } catch (IllegalArgumentException e) {
      throw new IOException("corrupt optimizer state: " + e.getMessage(), e);
    }
  }

  /** {@link #write} into a new byte array. */
  public static byte[] encode(OptimizerState state) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try {
      write(state, bytes);
    } catch (IOException e) {
      throw new IllegalStateException("in-memory write failed", e);
    }
    return bytes.toByteArray();
  }

  /** {@link #read} from a byte array; trailing bytes are an error here. */
  public static OptimizerState decode(byte[] bytes) throws IOException {
    ByteArrayInputStream in = new ByteArrayInputStream(bytes);
    OptimizerState s = read(in);
    if (in.available() > 0) {
      throw new IOException(in.available() + " unexpected bytes after the optimizer state");
    }
    return s;
  }

  private static void writeFloats(OutputStream out, CRC32C crc, ByteBuffer block, float[] a)
      throws IOException {
    for (int from = 0; from < a.length; from += BLOCK / 4) {
      int n = Math.min(BLOCK / 4, a.length - from);
      block.clear();
      block.asFloatBuffer().put(a, from, n);
      emit(out, crc, block.array(), n * 4);
    }
  }

  private static float[] readFloats(InputStream in, CRC32C crc, int n) throws IOException {
    float[] a = new float[n];
    byte[] buf = new byte[Math.min(BLOCK, n * 4)];
    ByteBuffer block = ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN);
    for (int from = 0; from < n; from += BLOCK / 4) {
      int count = Math.min(BLOCK / 4, n - from);
      fill(in, buf, count * 4, "arrays");
      crc.update(buf, 0, count * 4);
      block.clear();
      block.asFloatBuffer().get(a, from, count);
    }
    return a;
  }

  private static void checkCrc(InputStream in, CRC32C crc, String part) throws IOException {
    int expected = (int) crc.getValue();
    byte[] stored = new byte[4];
    fill(in, stored, 4, part + " checksum");
    int actual = ByteBuffer.wrap(stored).order(ByteOrder.LITTLE_ENDIAN).getInt();
    if (actual != expected) {
      throw new IOException("corrupt optimizer state: " + part + " checksum mismatch");
    }
    crc.update(stored, 0, 4);
  }

  private static byte[] readFully(InputStream in, CRC32C crc, int n, String part)
      throws IOException {
    byte[] b = new byte[n];
    fill(in, b, n, part);
    crc.update(b, 0, n);
    return b;
  }

  private static void fill(InputStream in, byte[] b, int n, String part) throws IOException {
    int off = 0;
    while (off < n) {
      int r = in.read(b, off, n - off);
      if (r < 0) {
        throw new EOFException("truncated optimizer state: stream ended inside the " + part);
      }
      off += r;
    }
  }

  private static void emit(OutputStream out, CRC32C crc, byte[] b, int n) throws IOException {
    crc.update(b, 0, n);
    out.write(b, 0, n);
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }
}
