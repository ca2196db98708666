package dev.roadless.optimizer.server;

import com.google.protobuf.UnsafeByteOperations;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/** Cuts float32 tensors into little-endian chunks, lazily, one chunk per {@code next()}. */
final class ChunkWriter implements Iterator<TensorChunk> {
  static final int DEFAULT_CHUNK_BYTES = 1 << 20;
  static final int MAX_CHUNK_BYTES = 3 << 20;

  private final List<String> names;
  private final float[][] values;
  private final int chunkElements;
  private int tensor;
  private int offset;

  ChunkWriter(List<String> names, float[][] values, int chunkBytes) {
    this.names = names;
    this.values = values;
    this.chunkElements = Math.max(1, chunkBytes / 4);
    skipEmpty();
  }

  @Override
  public boolean hasNext() {
    return tensor < values.length;
  }

  @Override
  public TensorChunk next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    float[] v = values[tensor];
    int n = Math.min(chunkElements, v.length - offset);
    ByteBuffer bytes = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(v, offset, n);
    TensorChunk chunk =
        TensorChunk.newBuilder()
            .setName(names.get(tensor))
            .setElementOffset(offset)
            .setDtype(DataType.DATA_TYPE_FLOAT32)
            .setData(UnsafeByteOperations.unsafeWrap(bytes.array()))
            .build();
    offset += n;
    skipEmpty();
    return chunk;
  }

  private void skipEmpty() {
    while (tensor < values.length && offset >= values[tensor].length) {
      tensor++;
      offset = 0;
    }
  }
}
