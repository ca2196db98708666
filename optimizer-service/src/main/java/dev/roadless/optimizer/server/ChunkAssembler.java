package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Fingerprint;
import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.run.Refusals;
import dev.roadless.optimizer.run.SummedPush;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.common.v1.TensorChunk;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;

/**
 * Reassembles the chunks of one stream into float32 arrays and proves that every element arrived
 * exactly once. It writes only into its own arrays, so a refused stream leaves no trace anywhere;
 * or, for a push summed into its step's one set ({@link SummedPush}), it decodes each chunk into a
 * per-thread scratch array, checks it there and only then hands it to the sum.
 */
final class ChunkAssembler {
  /** Per thread: a chunk of a summed push, decoded and checked before it touches the sum. */
  private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

  private final Map<String, Integer> index = new HashMap<>();
  private final List<String> names;
  private final float[][] values;
  private final List<NavigableMap<Long, Long>> covered;
  private final DataType dtype;
  private final ErrorReason nonFiniteReason;
  private long elements;
  private boolean bounded = true;
  private final Fingerprint fingerprint;
  private final long[] sizes;
  private final java.util.function.Supplier<float[][]> buffers;
  private int lastTensor = -1;
  private int lastFrom;
  private int lastTo;
  private SummedPush sum;

  /**
   * @param names tensor names in run order
   * @param sizes element count of each tensor
   * @param dtype the only encoding this stream may use (FLOAT32 or BFLOAT16)
   * @param nonFiniteReason the reason for a NaN/Inf value, or null to accept them
   */
  ChunkAssembler(List<String> names, long[] sizes, DataType dtype, ErrorReason nonFiniteReason) {
    this(names, sizes, null, dtype, nonFiniteReason);
  }

  /**
   * @param buffers gives the arrays to fill (one per tensor, right sizes), reused across pushes to
   *     spare the allocator, when the first chunk arrives (a stream that sends only a header holds
   *     none); null to allocate each tensor's array when its first chunk arrives. Every element is
   *     overwritten by a complete stream.
   */
  ChunkAssembler(
      List<String> names,
      long[] sizes,
      java.util.function.Supplier<float[][]> buffers,
      DataType dtype,
      ErrorReason nonFiniteReason) {
    if (dtype != DataType.DATA_TYPE_FLOAT32 && dtype != DataType.DATA_TYPE_BFLOAT16) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_DTYPE_MISMATCH,
              "dtype must be DATA_TYPE_FLOAT32 or DATA_TYPE_BFLOAT16, got " + dtype)
          .with("field", "dtype")
          .build();
    }
    this.names = names;
    this.dtype = dtype;
    this.nonFiniteReason = nonFiniteReason;
    this.values = new float[names.size()][];
    this.sizes = sizes;
    this.buffers = buffers;
    this.covered = new java.util.ArrayList<>(names.size());
    this.fingerprint = new Fingerprint(names.size());
    for (int i = 0; i < names.size(); i++) {
      index.put(names.get(i), i);
      covered.add(new TreeMap<>());
    }
  }

  /**
   * Sends every chunk to {@code push} (after its checks) instead of this assembler's arrays; {@link
   * #finish} then returns null.
   */
  ChunkAssembler summingInto(SummedPush push) {
    this.sum = push;
    return this;
  }

  /** Decodes one chunk into place; throws without side effects on other tensors. */
  void accept(TensorChunk chunk) {
    try (InboundChunk in = InboundChunk.of(chunk)) {
      accept(in);
    }
  }

  /**
   * Decodes one chunk into place, straight from the transport's buffers; throws without side
   * effects on other tensors. The caller closes the chunk.
   */
  void accept(InboundChunk chunk) {
    Integer t = index.get(chunk.name());
    if (t == null) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_UNKNOWN_TENSOR,
              "tensor '" + chunk.name() + "' is not part of the run")
          .with("tensor", chunk.name())
          .build();
    }
    if (chunk.dtype() != dtype) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_DTYPE_MISMATCH,
              "chunk of '" + chunk.name() + "' is " + chunk.dtype() + ", stream is " + dtype)
          .with("tensor", chunk.name())
          .build();
    }
    int width = dtype == DataType.DATA_TYPE_FLOAT32 ? 4 : 2;
    int bytes = chunk.byteLength();
    long size = sizes[t];
    long offset = chunk.elementOffset();
    if (bytes == 0 || bytes % width != 0) {
      throw sizeMismatch(
          chunk.name(), "data length " + bytes + " is not a positive multiple of " + width);
    }
    long count = bytes / width;
    // Compared without adding, so an offset near 2^63 cannot wrap around into range.
    if (offset < 0 || count > size || offset > size - count) {
      throw sizeMismatch(
          chunk.name(),
          "elements from " + offset + " (" + count + " of them) outside [0, " + size + ")");
    }
    claim(t, offset, offset + count);
    if (sum != null) {
      acceptSummed(chunk, t, (int) offset, (int) count, width);
      return;
    }
    target(t);
    if (width == 4) {
      chunk.readFloat32(values[t], (int) offset);
    } else {
      chunk.readBfloat16(values[t], (int) offset);
    }
    elements += count;
    // Checked right after the copy, while the chunk is still in the cache.
    int from = (int) offset;
    int to = (int) (offset + count);
    if (nonFiniteReason != null && !Finite.bounded(values[t], from, to)) {
      if (!Finite.all(values[t], from, to)) {
        reportNonFinite(t, from, (int) count);
      }
      bounded = false;
    }
    fingerprint.add(t, values[t], from, to);
    lastTensor = t;
    lastFrom = from;
    lastTo = to;
  }

  /** A summed push's chunk: decoded and checked in scratch, then added to the step's set. */
  private void acceptSummed(InboundChunk chunk, int t, int from, int count, int width) {
    float[] scratch = SCRATCH.get();
    if (scratch.length < count) {
      scratch = new float[count];
      SCRATCH.set(scratch);
    }
    if (width == 4) {
      chunk.readFloat32(scratch, 0);
    } else {
      chunk.readBfloat16(scratch, 0);
    }
    elements += count;
    if (nonFiniteReason != null && !Finite.bounded(scratch, 0, count)) {
      if (!Finite.all(scratch, 0, count)) {
        int i = 0;
        while (Float.isFinite(scratch[i])) {
          i++;
        }
        throw Refusals.nonFinite(nonFiniteReason, names.get(t), from + i, scratch[i]);
      }
      bounded = false;
    }
    fingerprint.addAt(t, scratch, 0, count, from);
    values[t] = sum.add(t, from, scratch, count);
    lastTensor = t;
    lastFrom = from;
    lastTo = from + count;
  }

  /** The tensor of the chunk {@link #accept} took last, -1 before the first. */
  int lastTensor() {
    return lastTensor;
  }

  /** The first element of the chunk {@link #accept} took last. */
  int lastFrom() {
    return lastFrom;
  }

  /** The end (exclusive) of the chunk {@link #accept} took last. */
  int lastTo() {
    return lastTo;
  }

  /** Tensor {@code t}'s array (null until data for it arrived). */
  float[] values(int t) {
    return values[t];
  }

  /** The values' {@link Fingerprint}, whatever the chunking and order they came in. */
  long fingerprint() {
    return fingerprint.value();
  }

  /**
   * True when every value accepted so far is below {@link Finite#bounded}'s limit, so no replica
   * mean it takes part in can overflow. Only tracked when non-finite values are refused.
   */
  boolean bounded() {
    return bounded;
  }

  /** Tensor {@code t}'s array, taken (or made) now: data for it has arrived. */
  private float[] target(int t) {
    if (values[t] == null) {
      if (buffers != null) {
        System.arraycopy(buffers.get(), 0, values, 0, values.length);
      } else {
        values[t] = new float[Math.toIntExact(sizes[t])];
      }
    }
    return values[t];
  }

  /**
   * Confirms full coverage and the sender's element count; returns the arrays in run order (null
   * for a summed push).
   */
  float[][] finish(long declaredElements) {
    for (int t = 0; t < names.size(); t++) {
      long next = 0;
      for (Map.Entry<Long, Long> range : covered.get(t).entrySet()) {
        if (range.getKey() != next) {
          break;
        }
        next = range.getValue();
      }
      if (next != sizes[t]) {
        boolean none = covered.get(t).isEmpty();
        throw RoadlessException.of(
                none
                    ? ErrorReason.ERROR_REASON_MISSING_TENSOR
                    : ErrorReason.ERROR_REASON_CHUNK_MISSING,
                none
                    ? "tensor '" + names.get(t) + "' was not sent"
                    : "tensor '" + names.get(t) + "' is missing elements from " + next)
            .with("tensor", names.get(t))
            .with("element", next)
            .build();
      }
    }
    if (declaredElements != elements) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_STREAM_TRUNCATED,
              "commit declares " + declaredElements + " elements but " + elements + " arrived")
          .build();
    }
    if (sum != null) {
      return null;
    }
    for (int t = 0; t < values.length; t++) {
      target(t); // tensors with no elements
    }
    return values;
  }

  private void claim(int t, long start, long end) {
    NavigableMap<Long, Long> ranges = covered.get(t);
    Map.Entry<Long, Long> before = ranges.floorEntry(start);
    Map.Entry<Long, Long> after = ranges.ceilingEntry(start);
    long clash = -1;
    if (before != null && before.getValue() > start) {
      clash = start;
    } else if (after != null && after.getKey() < end) {
      clash = after.getKey();
    }
    if (clash >= 0) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_CHUNK_OVERLAP,
              "tensor '" + names.get(t) + "' received element " + clash + " twice")
          .with("tensor", names.get(t))
          .with("element", clash)
          .build();
    }
    // Merge with neighbours so in-order streams keep a single range per tensor.
    long newStart = start;
    long newEnd = end;
    if (before != null && before.getValue() == start) {
      newStart = before.getKey();
      ranges.remove(before.getKey());
    }
    if (after != null && after.getKey() == end) {
      newEnd = after.getValue();
      ranges.remove(after.getKey());
    }
    ranges.put(newStart, newEnd);
  }

  private void reportNonFinite(int t, int offset, int count) {
    throw nonFinite(nonFiniteReason, names.get(t), values[t], offset, offset + count);
  }

  /** The refusal naming the first NaN or infinity in {@code v[from, to)}, which holds one. */
  static RoadlessException nonFinite(
      ErrorReason reason, String tensor, float[] v, int from, int to) {
    for (int i = from; i < to; i++) {
      if (!Float.isFinite(v[i])) {
        return Refusals.nonFinite(reason, tensor, i, v[i]);
      }
    }
    throw new IllegalStateException("no non-finite element in [" + from + ", " + to + ")");
  }

  private RoadlessException sizeMismatch(String tensor, String detail) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_SIZE_MISMATCH, "chunk of '" + tensor + "': " + detail)
        .with("tensor", tensor)
        .build();
  }
}
