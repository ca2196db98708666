package dev.roadless.optimizer.server;

import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunException;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.wire.InboundChunk;
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

  TrainingCalls(RunRegistry runs, Metrics metrics, SnapshotScheduler snapshots) {
    this.runs = runs;
    this.metrics = metrics;
    this.snapshots = snapshots;
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
          throw new RunException(
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
        PushResult result = commit(commitTotal(m));
        run.awaitStep(result.step() + 1)
            .whenComplete(
                (step, error) -> {
                  if (error != null) {
                    fail(error instanceof CompletionException c ? c.getCause() : error);
                    return;
                  }
                  ParameterSnapshot y = run.acquireParameters(Sequence.TRAIN);
                  PushResult answered =
                      new PushResult(
                          result.applied() || y.step() > result.step(),
                          result.step(),
                          result.appliedAsStep(),
                          y.step(),
                          result.duplicate());
                  List<Integer> order = all(run);
                  TrainStepHeader header =
                      TrainStepHeader.newBuilder()
                          .setPush(ProtoMapping.push(answered))
                          .setParameters(header(run, y, order))
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

      @Override
      void onClientDone() {
        pump.send(Collections.emptyIterator(), responses::onCompleted);
      }
    };
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
      throw RunException.of(
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
                        .setHeader(header(run, snapshot, order))
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

    @Override
    void onHeader(Object m) {
      GradientHeader header = gradientHeader(m);
      run = runs.get(header.getRunId());
      replica = header.getReplica();
      step = header.getStep();
      // Refuse a push that can never apply before its megabytes arrive.
      run.checkPush(replica, step);
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
      assembler.accept((InboundChunk) m);
    }

    final PushResult commit(long totalElements) {
      float[][] gradient = assembler.finish(totalElements);
      assembler = null;
      buffers = null; // the run owns them now
      PushResult result = run.push(replica, step, gradient);
      if (!result.duplicate() && result.applied()) {
        metrics.stepApplied(run.id());
        snapshots.stepApplied(run);
      }
      return result;
    }

    @Override
    void failed(Throwable t) {
      assembler = null;
      if (run != null) {
        run.releaseBuffers(buffers);
      }
      buffers = null;
      if (t instanceof RunException re && run != null) {
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
        throw RunException.of(
                ErrorReason.ERROR_REASON_UNKNOWN_TENSOR,
                "tensor '" + name + "' is not part of the run")
            .with("tensor", name)
            .build();
      }
      order.add(i);
    }
    return order;
  }

  private static ParametersHeader header(Run run, ParameterSnapshot snapshot, List<Integer> order) {
    ParametersHeader.Builder header =
        ParametersHeader.newBuilder()
            .setRunId(run.id())
            .setSequence(ProtoMapping.sequence(snapshot.sequence()))
            .setStep(snapshot.step());
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
