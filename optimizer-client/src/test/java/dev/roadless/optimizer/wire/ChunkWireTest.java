package dev.roadless.optimizer.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import io.grpc.Drainable;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The chunk fast path writes protobuf's bytes and reads whatever protobuf reads. */
class ChunkWireTest {
  private static float[] values(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return v;
  }

  private static ByteString le(float[] v, int from, int n) {
    ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v, from, n);
    return ByteString.copyFrom(b.array());
  }

  private static TensorChunk proto(String name, float[] v, int from, int n) {
    return TensorChunk.newBuilder()
        .setName(name)
        .setElementOffset(from)
        .setDtype(DataType.DATA_TYPE_FLOAT32)
        .setData(le(v, from, n))
        .build();
  }

  private static byte[] drained(FloatChunkOut chunk) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (InputStream in =
        new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), null).stream(chunk)) {
      int n = ((Drainable) in).drainTo(out);
      assertEquals(out.size(), n);
    }
    return out.toByteArray();
  }

  @Test
  void floatChunkOut_writesExactlyWhatProtobufWrites() throws Exception {
    float[] v = values(70_000, 1);
    for (String name : new String[] {"w", "", "layer.ä/weight"}) {
      for (int from : new int[] {0, 1, 65_536, 69_999}) {
        int n = Math.min(5000, v.length - from);
        byte[] expected =
            GetParametersResponse.newBuilder()
                .setChunk(proto(name, v, from, n))
                .build()
                .toByteArray();
        FloatChunkOut chunk = new FloatChunkOut(name, v, from, n, null);
        assertArrayEquals(expected, drained(chunk), name + "@" + from);
        assertEquals(expected.length, chunk.serializedSize());
      }
    }
  }

  @Test
  void floatChunkOut_readInOddPieces_sameBytes_andReleasesOnce() throws Exception {
    float[] v = values(9_000, 2);
    AtomicInteger released = new AtomicInteger();
    FloatChunkOut chunk = new FloatChunkOut("t", v, 100, 8_900, released::incrementAndGet);
    InputStream in = new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), null).stream(chunk);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] piece = new byte[7];
    out.write(in.read()); // one byte, then pieces that split floats
    for (int n; (n = in.read(piece, 0, piece.length)) > 0; ) {
      out.write(piece, 0, n);
    }
    in.close();
    in.close();
    byte[] expected =
        TrainRequest.newBuilder().setChunk(proto("t", v, 100, 8_900)).build().toByteArray();
    assertArrayEquals(expected, out.toByteArray());
    assertEquals(1, released.get());
  }

  /** A source that hands out {@code v} and records the ranges it was asked for. */
  private static FloatSource source(float[] v, List<int[]> asked) {
    return (from, dst, n) -> {
      asked.add(new int[] {from, n});
      System.arraycopy(v, from, dst, 0, n);
    };
  }

  @Test
  void floatChunkOut_fromASource_sameBytesAsFromTheArray_inSmallBlocks() throws Exception {
    float[] v = values(20_000, 3);
    for (int from : new int[] {0, 3, 10_000}) {
      int n = v.length - from;
      List<int[]> asked = new ArrayList<>();
      FloatChunkOut chunk = new FloatChunkOut("s", source(v, asked), from, n, null);
      byte[] expected =
          GetParametersResponse.newBuilder().setChunk(proto("s", v, from, n)).build().toByteArray();
      assertArrayEquals(expected, drained(chunk), "drained from " + from);
      assertEquals(expected.length, chunk.serializedSize());
      for (int[] range : asked) {
        assertTrue(range[1] <= 4096, "a block of " + range[1]);
      }
      // The generic path, in pieces that split floats, asks the source again.
      InputStream in =
          new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), null)
              .stream(new FloatChunkOut("s", source(v, asked), from, n, null));
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] piece = new byte[4099];
      for (int k; (k = in.read(piece, 0, piece.length)) > 0; ) {
        out.write(piece, 0, k);
      }
      assertArrayEquals(
          TrainRequest.newBuilder().setChunk(proto("s", v, from, n)).build().toByteArray(),
          out.toByteArray(),
          "read from " + from);
    }
  }

  @Test
  void parse_canonicalChunk_givesInboundChunk_onEveryBufferSplit() {
    float[] v = values(3_000, 3);
    byte[] wire =
        TrainRequest.newBuilder().setChunk(proto("b", v, 17, 2_000)).build().toByteArray();
    var m = new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), TrainRequestChunk.INSTANCE);
    for (int piece : new int[] {wire.length, 4096, 1000, 7, 3}) {
      Object parsed = m.parse(new SplitBufferStream(wire, piece));
      InboundChunk c = assertInstanceOf(InboundChunk.class, parsed);
      assertEquals("b", c.name());
      assertEquals(17, c.elementOffset());
      assertEquals(DataType.DATA_TYPE_FLOAT32, c.dtype());
      float[] dst = new float[2_017];
      c.readFloat32(dst, 17);
      c.close();
      assertArrayEquals(
          java.util.Arrays.copyOfRange(v, 17, 2_017), java.util.Arrays.copyOfRange(dst, 17, 2_017));
    }
  }

  @Test
  void parse_unusualLayouts_fallBackToProtobuf() throws Exception {
    float[] v = values(10, 4);
    TensorChunk chunk = proto("x", v, 2, 8);
    // Data first, then the other fields: valid protobuf, not the layout the fast path reads.
    ByteArrayOutputStream inner = new ByteArrayOutputStream();
    CodedOutputStream c = CodedOutputStream.newInstance(inner);
    c.writeBytes(4, chunk.getData());
    c.writeString(1, "x");
    c.writeInt64(2, 2);
    c.writeEnum(3, DataType.DATA_TYPE_FLOAT32.getNumber());
    c.flush();
    ByteArrayOutputStream outer = new ByteArrayOutputStream();
    CodedOutputStream o = CodedOutputStream.newInstance(outer);
    o.writeByteArray(2, inner.toByteArray());
    o.flush();
    var m = new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), TrainRequestChunk.INSTANCE);
    InboundChunk parsed =
        assertInstanceOf(
            InboundChunk.class, m.parse(new ByteArrayInputStream(outer.toByteArray())));
    float[] dst = new float[10];
    parsed.readFloat32(dst, 2);
    assertArrayEquals(
        java.util.Arrays.copyOfRange(v, 2, 10), java.util.Arrays.copyOfRange(dst, 2, 10));

    // A header is not a chunk.
    TrainRequest header =
        TrainRequest.newBuilder()
            .setHeader(GradientHeader.newBuilder().setRunId("r").setStep(3))
            .build();
    assertEquals(header, m.parse(new SplitBufferStream(header.toByteArray(), 2)));

    // Garbage is refused like protobuf refuses it.
    assertThrows(
        StatusRuntimeException.class,
        () -> m.parse(new ByteArrayInputStream(new byte[] {0x12, 9, 1})));
  }

  @Test
  void inboundChunk_bfloat16_widensExactly() {
    ByteBuffer b = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort((short) 0x3F80).putShort((short) 0xC000).putShort((short) 0x7F80);
    TensorChunk chunk =
        TensorChunk.newBuilder()
            .setName("h")
            .setDtype(DataType.DATA_TYPE_BFLOAT16)
            .setData(ByteString.copyFrom(b.array()))
            .build();
    float[] dst = new float[3];
    try (InboundChunk c = InboundChunk.of(chunk)) {
      c.readBfloat16(dst, 0);
      assertThrows(IllegalStateException.class, () -> c.readBfloat16(dst, 0));
    }
    assertArrayEquals(new float[] {1f, -2f, Float.POSITIVE_INFINITY}, dst);
  }

  @Test
  void readFloat32_copiesOnlyTheFloatsThatStraddleTwoBuffers() {
    float[] v = values(20_000, 6);
    byte[] wire =
        TrainRequest.newBuilder().setChunk(proto("b", v, 0, 20_000)).build().toByteArray();
    var m = new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), TrainRequestChunk.INSTANCE);
    // 16,385-byte buffers (an HTTP/2 frame's worth and one byte): every boundary splits a float.
    SplitBufferStream transport = new SplitBufferStream(wire, 16_385);
    InboundChunk c = (InboundChunk) m.parse(transport);
    float[] dst = new float[20_000];
    long header = transport.detached().copied();
    c.readFloat32(dst, 0);
    c.close();
    assertArrayEquals(v, dst);
    int boundaries = wire.length / 16_385;
    long copied = transport.detached().copied() - header;
    assertTrue(copied <= 4L * boundaries, copied + " bytes copied for " + boundaries + " splits");
  }

  @Test
  void closingAChunk_givesTheTransportItsBuffersBack() {
    byte[] wire =
        TrainRequest.newBuilder().setChunk(proto("b", values(8, 5), 0, 8)).build().toByteArray();
    SplitBufferStream transport = new SplitBufferStream(wire, 5);
    var m = new ChunkMarshaller<>(TrainRequest.getDefaultInstance(), TrainRequestChunk.INSTANCE);
    InboundChunk c = (InboundChunk) m.parse(transport);
    assertTrue(!transport.detached().closed());
    c.close();
    assertTrue(transport.detached().closed());
  }

  /** The chunk accessor of TrainRequest (a named class so the tests read clearly). */
  enum TrainRequestChunk implements java.util.function.Function<TrainRequest, TensorChunk> {
    INSTANCE;

    @Override
    public TensorChunk apply(TrainRequest m) {
      return m.hasChunk() ? m.getChunk() : null;
    }
  }
}
