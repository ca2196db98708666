package dev.roadless.optimizer.client;

import dev.roadless.optimizer.wire.FloatChunkOut;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Function;

/**
 * The messages of one upload-like stream (header, chunks covering every tensor, commit), made one
 * at a time as the transport asks for them, so a push never sits in memory twice. float32 chunks
 * are {@link FloatChunkOut}s, serialized straight from the caller's arrays; bfloat16 chunks are
 * narrowed into a small buffer per chunk. The arrays must not change until the call has finished.
 *
 * @param <M> the stream's generated request type, which wraps headers, chunks and commits
 */
final class PushMessages<M> implements Iterator<Object> {
  private final M header;
  private final M commit;
  private final List<String> names;
  private final float[][] values;
  private final DataType dtype;
  private final Function<TensorChunk, M> wrapChunk;
  private final int perChunk;
  private boolean headerSent;
  private boolean commitSent;
  private int tensor;
  private int offset;

  /**
   * @param header the first message
   * @param wrapChunk wraps a (bfloat16) chunk into the request type
   * @param wrapCommit wraps the commit into the request type
   * @param chunkBytes payload bytes per chunk
   */
  PushMessages(
      M header,
      Function<TensorChunk, M> wrapChunk,
      Function<StreamCommit, M> wrapCommit,
      List<String> names,
      float[][] values,
      DataType dtype,
      int chunkBytes) {
    this.header = header;
    this.names = names;
    this.values = values;
    this.dtype = dtype;
    this.wrapChunk = wrapChunk;
    int width = dtype == DataType.DATA_TYPE_BFLOAT16 ? 2 : 4;
    this.perChunk = Math.max(1, chunkBytes / width);
    long total = 0;
    for (float[] v : values) {
      total += v.length;
    }
    this.commit = wrapCommit.apply(StreamCommit.newBuilder().setTotalElements(total).build());
    skipEmpty();
  }

  /** A gradient header for {@code step}. */
  static GradientHeader header(String runId, int replica, long step, DataType dtype) {
    return GradientHeader.newBuilder()
        .setRunId(runId)
        .setReplica(replica)
        .setStep(step)
        .setDtype(dtype)
        .build();
  }

  @Override
  public boolean hasNext() {
    return !commitSent;
  }

  @Override
  public Object next() {
    if (!headerSent) {
      headerSent = true;
      return header;
    }
    if (tensor < values.length) {
      float[] v = values[tensor];
      int n = Math.min(perChunk, v.length - offset);
      Object chunk =
          dtype == DataType.DATA_TYPE_FLOAT32
              ? new FloatChunkOut(names.get(tensor), v, offset, n, null)
              : wrapChunk.apply(OptimizerClient.chunk(names.get(tensor), v, offset, n, dtype, 2));
      offset += n;
      skipEmpty();
      return chunk;
    }
    if (commitSent) {
      throw new NoSuchElementException();
    }
    commitSent = true;
    return commit;
  }

  private void skipEmpty() {
    while (tensor < values.length && offset >= values[tensor].length) {
      tensor++;
      offset = 0;
    }
  }
}
