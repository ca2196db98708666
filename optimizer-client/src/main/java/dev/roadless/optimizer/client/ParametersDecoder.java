package dev.roadless.optimizer.client;

import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ParametersEnd;
import dev.roadless.proto.optimizer.v1.ParametersHeader;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Assembles one parameter answer (header, float32 chunks, end) into arrays, checking that every
 * element arrived; chunks are copied straight from the receive buffers into place. A Train answer
 * to a push that asked for early parameters may send its chunks before the header: they are kept
 * only when the header says {@code parameters_sent_early}, and dropped otherwise (y then follows
 * the header).
 */
final class ParametersDecoder {
  private final float[][] reuse;
  private final List<String> earlyNames;
  private final int[] earlySizes;
  private float[][] early;
  private long earlyReceived;
  private final List<String> names = new ArrayList<>();
  private final Map<String, Integer> index = new HashMap<>();
  private ParametersHeader header;
  private float[][] values;
  private long received;

  /**
   * @param reuse arrays to fill when they match the answer's tensors (same order and sizes), or
   *     null to allocate new ones
   */
  ParametersDecoder(float[][] reuse) {
    this(reuse, null, null);
  }

  /**
   * @param earlyNames the run's tensors in spec order, when chunks may come before the header (a
   *     push that asked for early parameters), else null
   * @param earlySizes their element counts
   */
  ParametersDecoder(float[][] reuse, List<String> earlyNames, int[] earlySizes) {
    this.reuse = reuse;
    this.earlyNames = earlyNames;
    this.earlySizes = earlySizes;
  }

  /**
   * A Train answer's header: with {@code sentEarly} the chunks that came before it are y; else they
   * are void and y follows.
   */
  void header(ParametersHeader h, boolean sentEarly) {
    if (!sentEarly) {
      header(h);
      return;
    }
    if (earlyNames == null) {
      throw dataLoss("parameters sent early to a push that did not ask for them");
    }
    if (early == null) {
      early = earlyArrays();
    }
    header = h;
    values = early;
    for (int t = 0; t < h.getTensorsCount(); t++) {
      TensorDescriptor d = h.getTensors(t);
      long n = 1;
      for (long dim : d.getShapeList()) {
        n *= dim;
      }
      if (t >= earlyNames.size()
          || !d.getName().equals(earlyNames.get(t))
          || n != early[t].length) {
        throw dataLoss("early parameters do not match the header's tensor " + d.getName());
      }
      names.add(d.getName());
    }
    if (h.getTensorsCount() != earlyNames.size()) {
      throw dataLoss("early parameters do not match the header's tensors");
    }
    received = earlyReceived;
  }

  private float[][] earlyArrays() {
    float[][] out = new float[earlyNames.size()][];
    for (int t = 0; t < out.length; t++) {
      boolean fits =
          reuse != null && reuse.length == out.length && reuse[t].length == earlySizes[t];
      out[t] = fits ? reuse[t] : new float[earlySizes[t]];
    }
    return out;
  }

  void header(ParametersHeader h) {
    header = h;
    values = new float[h.getTensorsCount()][];
    for (int t = 0; t < values.length; t++) {
      TensorDescriptor d = h.getTensors(t);
      names.add(d.getName());
      index.put(d.getName(), t);
      long n = 1;
      for (long dim : d.getShapeList()) {
        n *= dim;
      }
      boolean fits = reuse != null && reuse.length == values.length && reuse[t].length == n;
      values[t] = fits ? reuse[t] : new float[Math.toIntExact(n)];
    }
  }

  /** Copies one chunk into place; the caller closes it. */
  void chunk(InboundChunk c) {
    if (header == null && earlyNames != null) {
      earlyChunk(c);
      return;
    }
    if (header == null) {
      throw dataLoss("chunk before the header");
    }
    Integer t = index.get(c.name());
    long n = c.byteLength() / 4;
    if (t == null
        || c.dtype() != DataType.DATA_TYPE_FLOAT32
        || c.byteLength() % 4 != 0
        || c.elementOffset() < 0
        || c.elementOffset() + n > values[t].length) {
      throw dataLoss(
          "bad chunk of '"
              + c.name()
              + "' at "
              + c.elementOffset()
              + " ("
              + c.byteLength()
              + " B)");
    }
    c.readFloat32(values[t], (int) c.elementOffset());
    received += n;
  }

  /** A chunk before the header: into the early arrays, by the run's tensor order. */
  private void earlyChunk(InboundChunk c) {
    if (early == null) {
      early = earlyArrays();
    }
    int t = earlyNames.indexOf(c.name());
    long n = c.byteLength() / 4;
    if (t < 0
        || c.dtype() != DataType.DATA_TYPE_FLOAT32
        || c.byteLength() % 4 != 0
        || c.elementOffset() < 0
        || c.elementOffset() + n > early[t].length) {
      throw dataLoss("bad early chunk of '" + c.name() + "' at " + c.elementOffset());
    }
    c.readFloat32(early[t], (int) c.elementOffset());
    earlyReceived += n;
  }

  /** Reads every tensor from a shared-memory segment's parameters region (spec order). */
  void fromSegment(dev.roadless.optimizer.shm.SharedSegment segment) {
    if (header == null) {
      throw dataLoss("parameters before the header");
    }
    try {
      segment.readParameters(values);
    } catch (IllegalArgumentException e) {
      throw dataLoss("shared-memory answer does not fit the header: " + e.getMessage());
    }
    received = segment.totalElements();
  }

  Parameters end(ParametersEnd end) {
    if (header == null) {
      throw dataLoss("end before the header");
    }
    if (end.getTotalElements() != received) {
      throw dataLoss("expected " + end.getTotalElements() + " got " + received);
    }
    return new Parameters(header.getStep(), List.copyOf(names), values);
  }

  static StatusRuntimeException dataLoss(String what) {
    return Status.DATA_LOSS.withDescription(what).asRuntimeException();
  }
}
