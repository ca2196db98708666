package dev.roadless.optimizer.wire;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * The few protobuf wire-format rules the chunk fast path needs: varints and the tags of the fields
 * of {@code roadless.common.v1.TensorChunk}. Every chunk-carrying streaming message of the service
 * holds its {@code TensorChunk} as field 2, so one layout serves them all.
 */
final class WireFormat {
  /** Field number of the chunk in every streaming message (header 1, chunk 2, commit/end 3). */
  static final int CHUNK_FIELD = 2;

  static final int TAG_NAME = (1 << 3) | 2;
  static final int TAG_OFFSET = 2 << 3;
  static final int TAG_DTYPE = 3 << 3;
  static final int TAG_DATA = (4 << 3) | 2;
  static final int TAG_CHUNK = (CHUNK_FIELD << 3) | 2;

  private WireFormat() {}

  static int varintSize(long v) {
    int n = 1;
    while ((v & ~0x7FL) != 0) {
      v >>>= 7;
      n++;
    }
    return n;
  }

  static int writeVarint(byte[] dst, int pos, long v) {
    while ((v & ~0x7FL) != 0) {
      dst[pos++] = (byte) ((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    dst[pos++] = (byte) v;
    return pos;
  }

  /**
   * The bytes that precede the raw data of a float32 chunk, exactly as protobuf writes them (fields
   * in number order, proto3 defaults left out): the outer tag and length, then the chunk's name,
   * element_offset, dtype and the tag and length of data.
   */
  static byte[] chunkHead(String name, long elementOffset, int dtype, int dataBytes) {
    byte[] utf8 = name.getBytes(StandardCharsets.UTF_8);
    int inner = 0;
    if (utf8.length > 0) {
      inner += 1 + varintSize(utf8.length) + utf8.length;
    }
    if (elementOffset != 0) {
      inner += 1 + varintSize(elementOffset);
    }
    if (dtype != 0) {
      inner += 1 + varintSize(dtype);
    }
    int dataHead = 1 + varintSize(dataBytes);
    inner += dataHead + dataBytes;
    byte[] head = new byte[1 + varintSize(inner) + inner - dataBytes];
    int p = 0;
    head[p++] = (byte) TAG_CHUNK;
    p = writeVarint(head, p, inner);
    if (utf8.length > 0) {
      head[p++] = (byte) TAG_NAME;
      p = writeVarint(head, p, utf8.length);
      System.arraycopy(utf8, 0, head, p, utf8.length);
      p += utf8.length;
    }
    if (elementOffset != 0) {
      head[p++] = (byte) TAG_OFFSET;
      p = writeVarint(head, p, elementOffset);
    }
    if (dtype != 0) {
      head[p++] = (byte) TAG_DTYPE;
      p = writeVarint(head, p, dtype);
    }
    head[p++] = (byte) TAG_DATA;
    p = writeVarint(head, p, dataBytes);
    assert p == head.length;
    return head;
  }

  /** Reads bytes one at a time and remembers them, so a parse can start over from the top. */
  static final class Recorder {
    private final InputStream in;
    private byte[] seen = new byte[64];
    private int count;

    Recorder(InputStream in) {
      this.in = in;
    }

    int count() {
      return count;
    }

    byte[] seen() {
      return java.util.Arrays.copyOf(seen, count);
    }

    int readByte() throws IOException {
      int b = in.read();
      if (b < 0) {
        throw new EOFException("message ended inside a field");
      }
      if (count == seen.length) {
        seen = java.util.Arrays.copyOf(seen, count * 2);
      }
      seen[count++] = (byte) b;
      return b;
    }

    /** A varint of at most 10 bytes; -1 (as a marker) for a malformed one. */
    long readVarint() throws IOException {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        int b = readByte();
        v |= (long) (b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
          return v;
        }
      }
      return -1;
    }

    String readUtf8(int n) throws IOException {
      int start = count;
      for (int i = 0; i < n; i++) {
        readByte();
      }
      return new String(seen, start, n, StandardCharsets.UTF_8);
    }
  }
}
