package dev.roadless.optimizer.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StateChunk;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StateSlot;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class StateCodecTest {
  private static final int N = 1000;

  /** A header for one tensor of N elements with slots z and x, two chunks per slot, the end. */
  private static List<ExportStateResponse> messages(long shape) {
    List<ExportStateResponse> out = new ArrayList<>();
    RunSpec spec =
        RunSpec.newBuilder()
            .addTensors(TensorDescriptor.newBuilder().setName("w").addShape(shape))
            .build();
    out.add(
        ExportStateResponse.newBuilder()
            .setHeader(
                StateHeader.newBuilder()
                    .setRunId("r")
                    .setSpec(spec)
                    .addSlots(StateSlot.STATE_SLOT_Z)
                    .addSlots(StateSlot.STATE_SLOT_X)
                    .setFormatVersion(StateCodec.FORMAT_VERSION))
            .build());
    for (StateSlot slot : new StateSlot[] {StateSlot.STATE_SLOT_Z, StateSlot.STATE_SLOT_X}) {
      for (int half = 0; half < 2; half++) {
        byte[] data = new byte[N / 2 * 4];
        Arrays.fill(data, (byte) (slot.getNumber() * 16 + half));
        out.add(
            ExportStateResponse.newBuilder()
                .setChunk(
                    StateChunk.newBuilder()
                        .setSlot(slot)
                        .setChunk(
                            TensorChunk.newBuilder()
                                .setName("w")
                                .setElementOffset(half * (N / 2))
                                .setDtype(DataType.DATA_TYPE_FLOAT32)
                                .setData(ByteString.copyFrom(data))))
                .build());
      }
    }
    out.add(
        ExportStateResponse.newBuilder()
            .setEnd(StreamCommit.newBuilder().setTotalElements(2L * N))
            .build());
    return out;
  }

  private static byte[] encode(List<ExportStateResponse> messages) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    StateWriter writer = StateCodec.writer(out);
    for (ExportStateResponse m : messages) {
      writer.write(m);
    }
    assertTrue(writer.ended());
    return out.toByteArray();
  }

  private static List<ExportStateResponse> decode(byte[] bytes) throws IOException {
    StateReader reader = StateCodec.reader(new ByteArrayInputStream(bytes), bytes.length);
    List<ExportStateResponse> out = new ArrayList<>();
    for (ExportStateResponse m = reader.next(); m != null; m = reader.next()) {
      out.add(m);
    }
    return out;
  }

  @Test
  void writeRead_roundTrip_givesTheMessagesWithTheChecksumFilledIn() throws IOException {
    List<ExportStateResponse> in = messages(N);
    List<ExportStateResponse> back = decode(encode(in));
    assertEquals(in.subList(0, 5), back.subList(0, 5));
    assertEquals(2L * N, back.get(5).getEnd().getTotalElements());
    assertTrue(back.get(5).getEnd().getCrc32C() != 0);
  }

  @Test
  void write_isProtobufDelimitedFraming_readableByParseDelimitedFrom() throws IOException {
    ByteArrayInputStream in = new ByteArrayInputStream(encode(messages(N)));
    assertTrue(ExportStateResponse.parseDelimitedFrom(in).hasHeader());
  }

  @Test
  void read_leavesBytesAfterTheEndUnread() throws IOException {
    byte[] one = encode(messages(N));
    ByteArrayInputStream in = new ByteArrayInputStream(Arrays.copyOf(one, one.length + 5));
    StateReader reader = StateCodec.reader(in, Long.MAX_VALUE);
    while (reader.next() != null) {}
    assertNull(reader.next());
    assertEquals(5, in.available());
  }

  @Test
  void read_truncatedAnywhere_throwsIOExceptionSayingTruncated() throws IOException {
    byte[] full = encode(messages(N));
    for (int cut = 0; cut < full.length; cut += 97) {
      byte[] part = Arrays.copyOf(full, cut);
      IOException e = assertThrows(IOException.class, () -> decode(part), "cut " + cut);
      assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }
  }

  @Test
  void read_anySingleBitFlipped_throwsIOException() throws IOException {
    byte[] full = encode(messages(N));
    for (int pos = 0; pos < full.length; pos += 7) {
      byte[] bad = full.clone();
      bad[pos] ^= (byte) (1 << (pos % 8));
      assertThrows(IOException.class, () -> decode(bad), "byte " + pos);
    }
  }

  @Test
  void header_declaringMoreArraysThanTheFileHolds_refusedBeforeReadingOn() throws IOException {
    byte[] bytes = encode(messages(1L << 40));
    StateReader reader = StateCodec.reader(new ByteArrayInputStream(bytes), bytes.length);
    IOException e = assertThrows(IOException.class, reader::header);
    assertTrue(e.getMessage().contains("bytes of arrays"), e.getMessage());
  }

  @Test
  void read_endBeforeEveryElement_throwsIOException() throws IOException {
    List<ExportStateResponse> short_ = new ArrayList<>(messages(N));
    short_.remove(4);
    short_.set(
        4,
        ExportStateResponse.newBuilder()
            .setEnd(StreamCommit.newBuilder().setTotalElements(3L * N / 2))
            .build());
    StateReader reader =
        StateCodec.reader(new ByteArrayInputStream(encode(short_)), Long.MAX_VALUE);
    IOException e =
        assertThrows(
            IOException.class,
            () -> {
              while (reader.next() != null) {}
            });
    assertTrue(e.getMessage().contains("elements"), e.getMessage());
  }

  @Test
  void writer_chunkBeforeHeader_throwsIllegalState() {
    StateWriter writer = StateCodec.writer(new ByteArrayOutputStream());
    assertThrows(IllegalStateException.class, () -> writer.write(messages(N).get(1)));
  }
}
