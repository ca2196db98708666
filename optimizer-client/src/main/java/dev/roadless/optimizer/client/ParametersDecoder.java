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
 * element arrived; chunks are copied straight from the receive buffers into place.
 */
final class ParametersDecoder {
  private final float[][] reuse;
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
    this.reuse = reuse;
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
