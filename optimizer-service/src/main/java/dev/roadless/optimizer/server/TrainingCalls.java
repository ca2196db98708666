package dev.roadless.optimizer.server;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.ParametersEnd;
import dev.roadless.proto.optimizer.v1.ParametersHeader;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import dev.roadless.proto.optimizer.v1.TrainStepHeader;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.stream.IntStream;

/**
 * The tensor-heavy calls (PushGradients, Train, GetParameters), bound with the chunk fast path of
 * {@code wire.WireMethods}: requests arrive as generated messages or {@code InboundChunk}s, and
 * parameters leave as {@code FloatChunkOut}s serialized straight from the run's snapshot.
 */
final class TrainingCalls {
  private final RunRegistry runs;
  private final Metrics metrics;
  private final SnapshotScheduler snapshots;
  private final SharedSegments segments;

  /**
   * Where Train answers are prepared once their step is applied. The step completes every waiting
   * replica's future on the thread that applied it, under the run's lock; preparing the answers
   * there (taking y and queuing its chunks, or for a duplicate shared-memory push copying y into
   * the segment) would hold the lock and serialize the replicas' answers.
   */
  private final Executor answers =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "roadless-answer");
            t.setDaemon(true);
            return t;
          });

  TrainingCalls(
      RunRegistry runs, Metrics metrics, SnapshotScheduler snapshots, SharedSegments segments) {
    this.runs = runs;
    this.metrics = metrics;
    this.snapshots = snapshots;
    this.segments = segments;
  }

  StreamObserver<Object> pushGradients(StreamObserver<PushGradientsResponse> responses) {
    return new PushStream(responses) {
      @Override
      GradientHeader gradientHeader(Object m) {
        return m instanceof PushGradientsRequest r && r.hasHeader() ? r.getHeader() : null;
      }

      @Override
      Long commitTotal(Object m) {
        return m instanceof PushGradientsRequest r && r.hasCommit()
            ? r.getCommit().getTotalElements()
            : null;
      }

      @Override
      void onCommit(Object m) {
        responses.onNext(ProtoMapping.push(commit(commitTotal(m))));
        responses.onCompleted();
      }
    };
  }

  StreamObserver<Object> train(StreamObserver<Object> responses) {
    OutboundPump<Object> pump =
        new OutboundPump<>((ServerCallStreamObserver<Object>) responses, metrics.out());
    return new PushStream(responses) {
      private String runId;
      private int replica = -1;

      @Override
      GradientHeader gradientHeader(Object m) {
        return m instanceof TrainRequest r && r.hasHeader() ? r.getHeader() : null;
      }

      @Override
      Long commitTotal(Object m) {
        return m instanceof TrainRequest r && r.hasCommit()
            ? r.getCommit().getTotalElements()
            : null;
      }

      @Override
      boolean repeatable() {
        return true;
      }

      @Override
      void onHeader(Object m) {
        GradientHeader h = gradientHeader(m);
        if (runId != null && (!runId.equals(h.getRunId()) || replica != h.getReplica())) {
          throw new RoadlessException(
              ErrorReason.ERROR_REASON_STREAM_OUT_OF_ORDER,
              "run_id and replica must stay the same on one Train stream");
        }
        runId = h.getRunId();
        replica = h.getReplica();
        super.onHeader(m);
      }

      @Override
      void onCommit(Object m) {
        Run run = current();
        SharedSegment segment = segment();
        SegmentSink sink = segment == null ? null : new SegmentSink(segment);
        PushResult result = commit(commitTotal(m), sink);
        CompletableFuture<Long> applied = run.awaitStep(result.step() + 1);
        (applied.isDone() ? applied : applied.thenApplyAsync(s -> s, answers))
            .whenComplete(
                (step, error) -> {
                  if (hasFailed()) {
                    return; // the client went away
                  }
                  if (error != null) {
                    fail(error instanceof CompletionException c ? c.getCause() : error);
                    return;
                  }
                  if (segment != null) {
                    answerInSharedMemory(run, result, segment, sink);
                    return;
                  }
                  ParameterSnapshot y = run.acquireParameters(Sequence.TRAIN);
                  List<Integer> order = all(run);
                  TrainStepHeader header =
                      TrainStepHeader.newBuilder()
                          .setPush(ProtoMapping.push(answered(result, y.step())))
                          .setParameters(header(run, y.sequence(), y.step(), order))
                          .build();
                  pump.send(
                      new ParameterMessages(
                          TrainResponse.newBuilder().setHeader(header).build(),
                          y,
                          order,
                          ChunkWriter.DEFAULT_CHUNK_BYTES,
                          TrainResponse.newBuilder().setEnd(end(run, order)).build()),
                      null);
                });
      }

      /**
       * The answer when y goes through the replica's segment. Normally the step's kernel already
       * put y there (the sink); a push answered without a step of its own (a duplicate) copies the
       * current y instead.
       */
      private void answerInSharedMemory(
          Run run, PushResult result, SharedSegment segment, SegmentSink sink) {
        long yStep = sink.step();
        if (yStep < 0) {
          ParameterSnapshot y = run.acquireParameters(Sequence.TRAIN);
          try {
            // One writer at a time: a replica's old stream may still be answering while its new
            // one pushes again.
            synchronized (segment) {
              segment.writeParameters(y.values());
            }
            yStep = y.step();
          } catch (RuntimeException | InternalError e) {
            fail(
                RoadlessException.of(
                        ErrorReason.ERROR_REASON_SHARED_MEMORY_UNKNOWN,
                        "cannot write y to the shared-memory segment: " + e)
                    .build());
            return;
          } finally {
            y.release();
          }
        }
        metrics.sharedMemoryOut().add(segment.totalElements() * 4);
        List<Integer> order = all(run);
        TrainStepHeader header =
            TrainStepHeader.newBuilder()
                .setPush(ProtoMapping.push(answered(result, yStep)))
                .setParameters(header(run, Sequence.TRAIN, yStep, order))
                .setParametersInSharedMemory(true)
                .build();
        pump.send(
            List.<Object>of(
                    TrainResponse.newBuilder().setHeader(header).build(),
                    TrainResponse.newBuilder().setEnd(end(run, order)).build())
                .iterator(),
            null);
      }

      @Override
      void onClientDone() {
        pump.send(Collections.emptyIterator(), responses::onCompleted);
      }
    };
  }

  /**
   * AttachSharedMemory: the replica's segment (created on first use) once the caller proved it can
   * read this server's shared-memory directory; until then null, and the caller gets {@link
   * #probe}.
   */
  SharedSegment attachSharedMemory(String runId, int replica, byte[] localityProof) {
    Run run = runs.get(runId);
    run.checkReplica(replica);
    segments.probe(); // also refuses when shared memory is off
    return segments.proves(localityProof) ? segments.attach(run, replica) : null;
  }

  /** The probe file whose bytes prove locality. */
  java.nio.file.Path probe() {
    return segments.probe();
  }

  /** Deletes a run's segments (DeleteRun). */
  void forgetSegments(String runId) {
    segments.forget(runId);
  }

  void getParameters(GetParametersRequest request, StreamObserver<Object> responses) {
    Run run = runs.get(request.getRunId());
    Sequence sequence = ProtoMapping.sequence(request.getSequence());
    List<Integer> order = select(run, request.getTensorNamesList());
    int chunkBytes =
        request.getMaxChunkBytes() == 0
            ? ChunkWriter.DEFAULT_CHUNK_BYTES
            : request.getMaxChunkBytes();
    if (chunkBytes < 4 || chunkBytes > ChunkWriter.MAX_CHUNK_BYTES) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SIZE_MISMATCH,
              "max_chunk_bytes must be in [4, " + ChunkWriter.MAX_CHUNK_BYTES + "]")
          .with("field", "max_chunk_bytes")
          .build();
    }
    if (request.getMinStep() == 0) {
      run.checkInitialized(); // fails fast; with min_step > 0 the wait covers the upload too
    }
    OutboundPump<Object> pump =
        new OutboundPump<>((ServerCallStreamObserver<Object>) responses, metrics.out());
    CompletableFuture<Long> reached = run.awaitStep(request.getMinStep());
    Context.current().addListener(ctx -> reached.cancel(false), Runnable::run);
    reached.whenComplete(
        (step, error) -> {
          if (error != null) {
            if (!(error instanceof CancellationException)) {
              responses.onError(Errors.toStatus(error));
            }
            return;
          }
          try {
            ParameterSnapshot snapshot = run.acquireParameters(sequence);
            pump.send(
                new ParameterMessages(
                    GetParametersResponse.newBuilder()
                        .setHeader(header(run, snapshot.sequence(), snapshot.step(), order))
                        .build(),
                    snapshot,
                    order,
                    chunkBytes,
                    GetParametersResponse.newBuilder().setEnd(end(run, order)).build()),
                responses::onCompleted);
          } catch (RuntimeException e) {
            responses.onError(Errors.toStatus(e));
          }
        });
  }

  /** Gradient pushes: the same validation for PushGradients and Train. */
  private abstract class PushStream extends InboundStream<Object> {
    private Run run;
    private ChunkAssembler assembler;
    private float[][] buffers;
    private int replica;
    private long step;
    private SharedSegment segment;

    PushStream(StreamObserver<?> responses) {
      super(responses, metrics.in());
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

    /** The shared-memory segment the current push names, or null when it sends chunks. */
    final SharedSegment segment() {
      return segment;
    }

    @Override
    void onHeader(Object m) {
      GradientHeader header = gradientHeader(m);
      run = runs.get(header.getRunId());
      replica = header.getReplica();
      step = header.getStep();
      // Refuse a push that can never apply before its megabytes arrive.
      run.checkPush(replica, step);
      segment = null;
      if (!header.getSharedMemoryToken().isEmpty()) {
        DataType dtype = header.getDtype();
        if (dtype != DataType.DATA_TYPE_FLOAT32 && dtype != DataType.DATA_TYPE_UNSPECIFIED) {
          throw RoadlessException.of(
                  ErrorReason.ERROR_REASON_SHARED_MEMORY_MISUSE,
                  "a shared-memory push is float32; got " + dtype)
              .with("field", "dtype")
              .build();
        }
        segment = segments.get(run, replica, header.getSharedMemoryToken().toByteArray());
        assembler = null;
        return;
      }
      buffers = run.acquireBuffers();
      assembler =
          new ChunkAssembler(
              run.tensorNames(),
              run.tensorSizes(),
              buffers,
              header.getDtype(),
              ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT);
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
    }

    final PushResult commit(long totalElements) {
      return commit(totalElements, null);
    }

    /** Applies the push; {@code sink} (or null) sees y of the step it takes part in. */
    final PushResult commit(long totalElements, Run.YSink sink) {
      PushResult result;
      if (segment != null) {
        long total = segment.totalElements();
        if (totalElements != total) {
          throw RoadlessException.of(
                  ErrorReason.ERROR_REASON_SIZE_MISMATCH,
                  "commit says " + totalElements + " elements; the run has " + total)
              .with("field", "total_elements")
              .build();
        }
        result = run.pushShared(replica, step, new SegmentGradient(segment, run), sink);
        if (!result.duplicate()) {
          metrics.sharedMemoryIn().add(total * 4);
        }
      } else {
        float[][] gradient = assembler.finish(totalElements);
        boolean bounded = assembler.bounded();
        assembler = null;
        buffers = null; // the run owns them now
        result = run.push(replica, step, gradient, bounded, sink);
      }
      if (!result.duplicate() && result.applied()) {
        metrics.stepApplied(run.id());
        snapshots.stepApplied(run);
      }
      return result;
    }

    @Override
    void failed(Throwable t) {
      assembler = null;
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

  private static List<Integer> all(Run run) {
    return IntStream.range(0, run.tensorNames().size()).boxed().toList();
  }

  private static List<Integer> select(Run run, List<String> names) {
    if (names.isEmpty()) {
      return all(run);
    }
    List<Integer> order = new ArrayList<>();
    for (String name : names) {
      int i = run.tensorNames().indexOf(name);
      if (i < 0) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_UNKNOWN_TENSOR,
                "tensor '" + name + "' is not part of the run")
            .with("tensor", name)
            .build();
      }
      order.add(i);
    }
    return order;
  }

  /** The push's answer as of y at {@code yStep}: applied once the run has moved past it. */
  private static PushResult answered(PushResult result, long yStep) {
    return new PushResult(
        result.applied() || yStep > result.step(),
        result.step(),
        result.appliedAsStep(),
        yStep,
        result.duplicate());
  }

  private static ParametersHeader header(
      Run run, Sequence sequence, long step, List<Integer> order) {
    ParametersHeader.Builder header =
        ParametersHeader.newBuilder()
            .setRunId(run.id())
            .setSequence(ProtoMapping.sequence(sequence))
            .setStep(step);
    order.forEach(i -> header.addTensors(run.spec().getTensors(i)));
    return header.build();
  }

  private static ParametersEnd end(Run run, List<Integer> order) {
    long[] sizes = run.tensorSizes();
    return ParametersEnd.newBuilder()
        .setTotalElements(order.stream().mapToLong(i -> sizes[i]).sum())
        .build();
  }
}
