package dev.roadless.checkpoint.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The safetensors format (huggingface/safetensors), written and read without the library:
 *
 * <pre>
 * [8 bytes]  N, the header length, unsigned little-endian
 * [N bytes]  UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
 *            "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
 * [rest]     the data section: every tensor's little-endian row-major bytes
 * </pre>
 *
 * Offsets are relative to the data section, and the tensors cover it exactly: no gaps, no overlaps
 * (readers refuse holes). Like the reference writer, tensors are laid out by alignment (8-byte
 * types first) and then by name, so every tensor starts aligned to its element size.
 */
public final class Safetensors {
  /** Readers refuse larger headers; so does the reference implementation (100 MB). */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final ObjectMapper JSON = new ObjectMapper();

  private Safetensors() {}

  /** The tensors in file order: larger element types first, then by name. */
  public static List<Tensor> layout(List<Tensor> tensors) {
    List<Tensor> sorted = new ArrayList<>(tensors);
    sorted.sort(
        Comparator.comparingInt((Tensor t) -> -t.dtype().bytes()).thenComparing(Tensor::name));
    Set<String> names = new HashSet<>();
    for (Tensor t : sorted) {
      if (!names.add(t.name()) || t.name().equals("__metadata__")) {
        throw new IllegalArgumentException("duplicate or reserved tensor name " + t.name());
      }
    }
    return sorted;
  }

  /** Writes a file; {@code metadata} goes to {@code __metadata__} (string values only). */
  public static void write(OutputStream out, List<Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    List<Tensor> ordered = layout(tensors);
    ObjectNode header = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = header.putObject("__metadata__");
      metadata.forEach(meta::put);
    }
    long offset = 0;
    for (Tensor t : ordered) {
      ObjectNode entry = header.putObject(t.name());
      entry.put("dtype", t.dtype().name());
      ArrayNode shape = entry.putArray("shape");
      for (long d : t.shape()) {
        shape.add(d);
      }
      entry.putArray("data_offsets").add(offset).add(offset + t.data().length);
      offset += t.data().length;
    }
    byte[] json = JSON.writeValueAsBytes(header);
    int padded = (json.length + 7) / 8 * 8;
    ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
    prefix.putLong(padded).put(json);
    while (prefix.hasRemaining()) {
      prefix.put((byte) ' ');
    }
    out.write(prefix.array());
    for (Tensor t : ordered) {
      out.write(t.data());
    }
  }

  /** A parsed file: its tensors by name (file order) and its metadata. */
  public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  /**
   * Reads and validates a whole file.
   *
   * @throws IOException when the file cannot be read or is not valid safetensors (the message says
   *     why)
   */
  public static Contents read(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      ByteBuffer lengthBytes = readFully(ch, 0, 8, size);
      long n = lengthBytes.order(ByteOrder.LITTLE_ENDIAN).getLong(0);
      if (n < 2 || n > MAX_HEADER_BYTES || 8 + n > size) {
        throw new IOException("bad header length " + n + " in a file of " + size + " bytes");
      }
      ByteBuffer headerBytes = readFully(ch, 8, (int) n, size);
      JsonNode header = JSON.readTree(StandardCharsets.UTF_8.decode(headerBytes).toString());
      if (header == null || !header.isObject()) {
        throw new IOException("header is not a JSON object");
      }
      long dataStart = 8 + n;
      long dataSize = size - dataStart;
      Map<String, String> metadata = new LinkedHashMap<>();
      List<Entry> entries = new ArrayList<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (e.getKey().equals("__metadata__")) {
          e.getValue()
              .fields()
              .forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
        } else {
          entries.add(Entry.parse(e.getKey(), e.getValue()));
        }
      }
      entries.sort(Comparator.comparingLong(Entry::begin));
      long expected = 0;
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      for (Entry e : entries) {
        if (e.begin() != expected) {
          throw new IOException(
              "tensor " + e.name() + " starts at " + e.begin() + ", not " + expected);
        }
        expected = e.end();
        if (expected > dataSize) {
          throw new IOException("tensor " + e.name() + " ends past the data section");
        }
        byte[] data = new byte[Math.toIntExact(e.end() - e.begin())];
        readFully(ch, dataStart + e.begin(), data.length, size).get(data);
        tensors.put(e.name(), new Tensor(e.name(), e.dtype(), e.shape(), data));
      }
      if (expected != dataSize) {
        throw new IOException((dataSize - expected) + " bytes after the last tensor");
      }
      return new Contents(tensors, metadata);
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new IOException("not a valid safetensors file: " + e.getMessage(), e);
    }
  }

  private record Entry(String name, Tensor.Dtype dtype, long[] shape, long begin, long end) {
    static Entry parse(String name, JsonNode node) throws IOException {
      JsonNode offsets = node.get("data_offsets");
      JsonNode shapeNode = node.get("shape");
      if (offsets == null || offsets.size() != 2 || shapeNode == null || !shapeNode.isArray()) {
        throw new IOException("tensor " + name + " lacks shape or data_offsets");
      }
      Tensor.Dtype dtype;
      try {
        dtype = Tensor.Dtype.valueOf(node.path("dtype").asText());
      } catch (IllegalArgumentException e) {
        throw new IOException("tensor " + name + " has unsupported dtype " + node.get("dtype"));
      }
      long[] shape = new long[shapeNode.size()];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = shapeNode.get(i).asLong();
      }
      long begin = offsets.get(0).asLong();
      long end = offsets.get(1).asLong();
      if (end - begin != Tensor.elements(shape) * dtype.bytes()) {
        throw new IOException("tensor " + name + ": offsets do not match its shape");
      }
      return new Entry(name, dtype, shape, begin, end);
    }
  }

  private static ByteBuffer readFully(FileChannel ch, long position, int length, long size)
      throws IOException {
    if (position + length > size) {
      throw new IOException("file truncated at " + size + " bytes");
    }
    ByteBuffer b = ByteBuffer.allocate(length);
    while (b.hasRemaining()) {
      if (ch.read(b, position + b.position()) < 0) {
        throw new IOException("unexpected end of file");
      }
    }
    return b.flip();
  }
}
