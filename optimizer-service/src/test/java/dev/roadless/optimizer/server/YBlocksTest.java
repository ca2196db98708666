package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.optimizer.run.MemoryBudget;
import dev.roadless.optimizer.wire.FloatChunkOut;
import dev.roadless.optimizer.wire.WireMethods;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The early-y block pool is sized once, at a run's first pipelined push, to one step's blocks: a
 * whole step in flight then takes no new arrays (each new array is charged to the memory budget,
 * which is how this test sees them).
 */
class YBlocksTest {
  private static final int BLOCK = 1 << 16;
  private static final long BYTES = 4L * BLOCK;

  @Test
  void reserve_sizesThePoolToOneStepOnce_aWholeStepInFlightTakesNoNewArray() throws Exception {
    MemoryBudget budget = new MemoryBudget("test", 1L << 40);
    YBlocks pool = new YBlocks(budget);
    long[] sizes = {3 * BLOCK + 7, BLOCK, 1}; // 4 + 1 + 1 blocks
    pool.reserve(sizes);
    assertEquals(6 * BYTES, budget.used());
    pool.reserve(sizes);
    assertEquals(6 * BYTES, budget.used(), "a second push reserves nothing more");

    float[] y = new float[BLOCK];
    List<YBlocks.Block> blocks = new ArrayList<>();
    List<FloatChunkOut> sent = new ArrayList<>();
    for (int b = 0; b < 6; b++) {
      YBlocks.Block block = pool.copy("t", (long) b * BLOCK, y, b == 5 ? 1 : BLOCK);
      sent.add(block.message()); // queued on a stream
      blocks.add(block);
    }
    assertEquals(6 * BYTES, budget.used(), "one step's blocks at once come from the pool");

    // A seventh block in flight (more than a step) is allocated and charged; the pool keeps it.
    YBlocks.Block extra = pool.copy("t", 0, y, BLOCK);
    assertEquals(7 * BYTES, budget.used());
    extra.release();
    blocks.forEach(YBlocks.Block::release); // the encoder's holds
    for (FloatChunkOut m : sent) {
      // gRPC closes a message's stream once it has framed it: the stream's hold goes.
      WireMethods.TRAIN.getResponseMarshaller().stream(m).close();
    }
    pool.reserve(sizes);
    assertEquals(7 * BYTES, budget.used(), "the pool owns 7 arrays and reserves none");
    for (int b = 0; b < 7; b++) {
      pool.copy("t", 0, y, BLOCK); // every array is back in the pool
    }
    assertEquals(7 * BYTES, budget.used());
  }

  @Test
  void queuedOnAStreamCancelledBeforeWriting_theArrayComesBack() throws Exception {
    MemoryBudget budget = new MemoryBudget("test", 1L << 40);
    YBlocks pool = new YBlocks(budget);
    pool.reserve(new long[] {BLOCK});
    float[] y = new float[BLOCK];
    YBlocks.Block block = pool.copy("t", 0, y, BLOCK);
    YBlocks.Queued written = block.queued(); // a stream that writes it
    YBlocks.Queued dropped = block.queued(); // a stream cancelled first: OutboundPump closes it
    block.release(); // the encoder's hold
    FloatChunkOut m = (FloatChunkOut) written.next();
    written.close(); // after next(): the message holds the block now
    dropped.close();
    WireMethods.TRAIN.getResponseMarshaller().stream(m).close();
    pool.copy("t", 0, y, BLOCK);
    assertEquals(BYTES, budget.used(), "the block's array was back in the pool: no new array");
  }
}
