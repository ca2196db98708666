package dev.roadless.optimizer.server;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.run.EarlyParameters;
import dev.roadless.optimizer.run.PipelinedPush;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.run.SummedPush;
import dev.roadless.optimizer.transport.SegmentPush;
import dev.roadless.optimizer.transport.SharedMemoryTransport;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import io.grpc.stub.StreamObserver;

/**
 * Gradient pushes, the same for PushGradients and Train: the header is checked once (before the
 * megabytes arrive), chunks are checked finite as they arrive ({@link ChunkAssembler}), a push
 * naming a shared-memory segment goes through the {@link SharedMemoryTransport}, and the commit
 * hands the gradient to the run. A refused push is counted and changes nothing.
 */
abstract class PushStream extends InboundStream<Object> {
  private final RunRegistry runs;
  private final Metrics metrics;
  private final SnapshotScheduler snapshots;
  private final SharedMemoryTransport transport;
  private Run run;
  private ChunkAssembler assembler;
  private float[][] buffers;
  private int replica;
  private long step;
  private SegmentPush segment;
  private PipelinedPush pipelined;
  private SummedPush summed;

  PushStream(StreamObserver<?> responses, TrainingCalls calls) {
    super(responses, calls.metrics().in(), calls.idle());
    this.runs = calls.runs();
    this.metrics = calls.metrics();
    this.snapshots = calls.snapshots();
    this.transport = calls.transport();
  }

  /** The message's header, or null if it is not a header. */
  abstract GradientHeader gradientHeader(Object m);

  /** The commit's element count, or null if the message is not a commit. */
  abstract Long commitTotal(Object m);

  @Override
  final Kind kind(Object m) {
    if (m instanceof InboundChunk) {
      return Kind.CHUNK;
    }
    if (gradientHeader(m) != null) {
      return Kind.HEADER;
    }
    return commitTotal(m) != null ? Kind.COMMIT : Kind.OTHER;
  }

  final Run current() {
    return run;
  }

  final Metrics metrics() {
    return metrics;
  }

  /** The current push's part in a pipelined step, or null when it takes the whole-step path. */
  final PipelinedPush pipelined() {
    return pipelined;
  }

  /** The current push when its chunks are summed into its step's one set, else null. */
  final SummedPush summed() {
    return summed;
  }

  /** Where a chunked push's early y goes when its header asks for it; null: nowhere. */
  EarlyParameters early(GradientHeader header) {
    return null;
  }

  /** The shared-memory push of the current message, or null when it sends chunks. */
  final SegmentPush segment() {
    return segment;
  }

  @Override
  void onHeader(Object m) {
    GradientHeader header = gradientHeader(m);
    run = runs.get(header.getRunId());
    replica = header.getReplica();
    step = header.getStep();
    // The one check of a push: refuse one that can never apply before its megabytes arrive.
    run.checkPush(replica, step);
    segment = null;
    pipelined = null;
    summed = null;
    if (!header.getSharedMemoryToken().isEmpty()) {
      DataType dtype = header.getDtype();
      if (dtype != DataType.DATA_TYPE_FLOAT32 && dtype != DataType.DATA_TYPE_UNSPECIFIED) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_SHARED_MEMORY_MISUSE,
                "a shared-memory push is float32; got " + dtype)
            .with("field", "dtype")
            .build();
      }
      segment = transport.open(run, replica, header.getSharedMemoryToken().toByteArray());
      assembler = null;
      return;
    }
    EarlyParameters early = early(header);
    // SYNC with one or two replicas, on Train (whose answer follows the step, so a voided push
    // learns it): the chunks are summed into the step's one set as they arrive.
    summed = repeatable() && early == null ? run.joinSum(replica, step) : null;
    Run target = run;
    assembler =
        summed != null
            ? new ChunkAssembler(
                    run.tensorNames(),
                    run.tensorSizes(),
                    header.getDtype(),
                    ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT)
                .summingInto(summed)
            : new ChunkAssembler(
                run.tensorNames(),
                run.tensorSizes(),
                // Taken when the first chunk arrives, and admitted against the memory budget then.
                () -> buffers = target.acquireBuffers(),
                header.getDtype(),
                ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT);
    // SYNC: the mean (and y, for a stream that asks) is formed block by block as pushes arrive;
    // a summed push takes part with the one set, where its values are while the peer's are not.
    pipelined = run.joinPipeline(replica, step, early);
    if (pipelined != null && summed != null) {
      pipelined.summed();
    }
  }

  @Override
  final void onChunk(Object m) {
    if (segment != null) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SHARED_MEMORY_MISUSE,
              "a push that names a shared-memory segment sends no chunks")
          .build();
    }
    assembler.accept((InboundChunk) m);
    if (pipelined != null) {
      int t = assembler.lastTensor();
      pipelined.arrived(t, assembler.lastFrom(), assembler.lastTo(), assembler.values(t));
    }
  }

  /** Applies the push; a shared-memory push's step writes y into its segment. */
  final PushResult commit(long totalElements) {
    PushResult result;
    if (segment != null) {
      try {
        result = segment.push(step, totalElements);
      } finally {
        if (!repeatable()) {
          segment.close(); // PushGradients: y goes nowhere; Train closes it after its answer
        }
      }
      if (!result.duplicate()) {
        metrics.sharedMemoryIn().add(segment.totalElements() * 4);
      }
    } else {
      float[][] gradient = assembler.finish(totalElements);
      boolean bounded = assembler.bounded();
      long print = assembler.fingerprint();
      assembler = null;
      if (summed != null) {
        result = summed.commit(bounded, print);
        if (!result.duplicate() && result.applied()) {
          metrics.stepApplied(run.id());
          snapshots.stepApplied(run);
        }
        return result;
      }
      buffers = null; // the run owns them now
      result = run.push(replica, step, gradient, bounded, print, null);
      if (pipelined != null) {
        pipelined.accepted();
      }
    }
    if (!result.duplicate() && result.applied()) {
      metrics.stepApplied(run.id());
      snapshots.stepApplied(run);
    }
    return result;
  }

  @Override
  void failed(Throwable t) {
    if (pipelined != null) {
      pipelined.leave(); // before it was accepted: the step runs whole, early y is void
    }
    pipelined = null;
    if (summed != null) {
      summed.leave(); // before it was accepted: voids the step's sum if its chunks touched it
    }
    summed = null;
    assembler = null;
    if (segment != null) {
      segment.close();
    }
    segment = null;
    if (run != null) {
      run.releaseBuffers(buffers);
    }
    buffers = null;
    if (t instanceof RoadlessException re && run != null) {
      run.countRefusal(re.reason());
      metrics.pushRefused(Errors.reasonName(re.reason()));
    }
  }
}
