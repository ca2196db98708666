package dev.roadless.checkpoint.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The safetensors writer and reader against the format's rules. */
class SafetensorsTest {
  @TempDir Path dir;

  private static final List<Tensor> TENSORS =
      List.of(
          Tensor.ofFloats("fc.weight", new long[] {2, 3}, new float[] {1, -2, 3.5f, 0, 1e-8f, 7}),
          Tensor.ofFloats("bn.running_var", new long[] {3}, new float[] {1, 2, 3}),
          Tensor.ofLongScalar("bn.num_batches_tracked", 80));

  @Test
  void write_thenRead_sameTensorsAndMetadata() throws IOException {
    Path file = write(TENSORS, Map.of("format", "pt", "roadless.step", "30"));
    Safetensors.Contents c = Safetensors.read(file);
    assertEquals(3, c.tensors().size());
    for (Tensor t : TENSORS) {
      assertEquals(t, c.tensors().get(t.name()));
    }
    assertArrayEquals(new long[] {80}, c.tensors().get("bn.num_batches_tracked").longs());
    assertArrayEquals(new long[0], c.tensors().get("bn.num_batches_tracked").shape());
    assertEquals(Map.of("format", "pt", "roadless.step", "30"), c.metadata());
  }

  @Test
  void write_anyTensors_headerPaddedAndDataAlignedWithoutHoles() throws IOException {
    byte[] bytes = Files.readAllBytes(write(TENSORS, Map.of("format", "pt")));
    long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, n % 8, "header length " + n);
    JsonNode header =
        new ObjectMapper().readTree(new String(bytes, 8, (int) n, StandardCharsets.UTF_8).trim());
    // int64 first (8-byte aligned), then float32 tensors by name, back to back.
    assertEquals(List.of(0L, 8L), offsets(header, "bn.num_batches_tracked"));
    assertEquals(List.of(8L, 20L), offsets(header, "bn.running_var"));
    assertEquals(List.of(20L, 44L), offsets(header, "fc.weight"));
    assertEquals(8 + n + 44, bytes.length);
    assertEquals("I64", header.get("bn.num_batches_tracked").get("dtype").asText());
  }

  @Test
  void read_truncatedOrWithTrailingBytes_refused() throws IOException {
    byte[] bytes = Files.readAllBytes(write(TENSORS, Map.of()));
    Path cut = dir.resolve("cut.safetensors");
    Files.write(cut, Arrays.copyOf(bytes, bytes.length - 4));
    assertThrows(IOException.class, () -> Safetensors.read(cut));
    Path longer = dir.resolve("longer.safetensors");
    Files.write(longer, Arrays.copyOf(bytes, bytes.length + 4));
    IOException e = assertThrows(IOException.class, () -> Safetensors.read(longer));
    assertTrue(e.getMessage().contains("after the last tensor"), e.getMessage());
  }

  @Test
  void write_duplicateName_refused() {
    List<Tensor> twice = List.of(TENSORS.get(1), TENSORS.get(1));
    assertThrows(
        IllegalArgumentException.class,
        () -> Safetensors.write(new ByteArrayOutputStream(), twice, Map.of()));
  }

  private Path write(List<Tensor> tensors, Map<String, String> metadata) throws IOException {
    Path file = dir.resolve("t.safetensors");
    try (var out = Files.newOutputStream(file)) {
      Safetensors.write(out, tensors, metadata);
    }
    return file;
  }

  private static List<Long> offsets(JsonNode header, String name) {
    JsonNode o = header.get(name).get("data_offsets");
    return List.of(o.get(0).asLong(), o.get(1).asLong());
  }
}
