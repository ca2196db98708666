package dev.roadless.optimizer.server;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.optimizer.transport.SharedMemoryTransport;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.ParametersEnd;
import dev.roadless.proto.optimizer.v1.ParametersHeader;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.stream.IntStream;

/**
 * The tensor-heavy calls (PushGradients, Train, GetParameters; pushes in {@link PushStream} and
 * {@link TrainStream}), bound with the chunk fast path of {@code wire.WireMethods}: requests arrive
 * as generated messages or {@code InboundChunk}s, and parameters leave as {@code FloatChunkOut}s
 * serialized straight from the run's snapshot.
 */
final class TrainingCalls {
  private final RunRegistry runs;
  private final Metrics metrics;
  private final SnapshotScheduler snapshots;
  private final SharedMemoryTransport transport;

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

  private final IdleStreams idle;

  /** The recycled arrays early y is sent from, shared by every run's streams. */
  private final YBlocks yBlocks;

  TrainingCalls(
      RunRegistry runs,
      Metrics metrics,
      SnapshotScheduler snapshots,
      SharedMemoryTransport transport,
      IdleStreams idle) {
    this.idle = idle;
    this.runs = runs;
    this.yBlocks = new YBlocks(runs.budget());
    this.metrics = metrics;
    this.snapshots = snapshots;
    this.transport = transport;
  }

  IdleStreams idle() {
    return idle;
  }

  RunRegistry runs() {
    return runs;
  }

  Metrics metrics() {
    return metrics;
  }

  SnapshotScheduler snapshots() {
    return snapshots;
  }

  SharedMemoryTransport transport() {
    return transport;
  }

  Executor answers() {
    return answers;
  }

  YBlocks yBlocks() {
    return yBlocks;
  }

  StreamObserver<Object> pushGradients(StreamObserver<PushGradientsResponse> responses) {
    return new PushStream(responses, this) {
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
    return new TrainStream(responses, this);
  }

  /**
   * AttachSharedMemory: the replica's segment (created on first use) once the caller proved it can
   * read this server's shared-memory directory; until then null, and the caller gets {@link
   * #probe}.
   */
  SharedSegment attachSharedMemory(String runId, int replica, byte[] localityProof) {
    return transport.attach(runs.get(runId), replica, localityProof);
  }

  /** The probe file whose bytes prove locality. */
  java.nio.file.Path probe() {
    return transport.probe();
  }

  /** Deletes a run's segments (DeleteRun). */
  void forgetSegments(String runId) {
    transport.forget(runId);
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
              ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
              "max_chunk_bytes must be 0 (the default) or in [4, "
                  + ChunkWriter.MAX_CHUNK_BYTES
                  + "]")
          .with("field", "max_chunk_bytes")
          .with("limit", ChunkWriter.MAX_CHUNK_BYTES)
          .build();
    }
    if (request.getMinStep() == 0) {
      run.checkActive(); // fails fast; with min_step > 0 the wait covers the upload too
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

  static List<Integer> all(Run run) {
    return IntStream.range(0, run.tensorNames().size()).boxed().toList();
  }

  private static List<Integer> select(Run run, List<String> names) {
    if (names.isEmpty()) {
      return all(run);
    }
    // One map lookup per name: a request naming tens of thousands of tensors stays linear.
    Map<String, Integer> index = new HashMap<>();
    List<String> all = run.tensorNames();
    for (int i = 0; i < all.size(); i++) {
      index.put(all.get(i), i);
    }
    List<Integer> order = new ArrayList<>(names.size());
    boolean[] named = new boolean[all.size()];
    for (String name : names) {
      Integer i = index.get(name);
      if (i == null) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_UNKNOWN_TENSOR,
                "tensor '" + name + "' is not part of the run")
            .with("tensor", name)
            .build();
      }
      if (named[i]) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
                "tensor '" + name + "' is named twice in tensor_names")
            .with("field", "tensor_names")
            .with("tensor", name)
            .build();
      }
      named[i] = true;
      order.add(i);
    }
    return order;
  }

  /** The push's answer as of y at {@code yStep}: applied once the run has moved past it. */
  static PushResult answered(PushResult result, long yStep) {
    return new PushResult(
        result.applied() || yStep > result.step(),
        result.step(),
        result.appliedAsStep(),
        yStep,
        result.duplicate());
  }

  static ParametersHeader header(Run run, Sequence sequence, long step, List<Integer> order) {
    ParametersHeader.Builder header =
        ParametersHeader.newBuilder()
            .setRunId(run.id())
            .setSequence(ProtoMapping.sequence(sequence))
            .setStep(step);
    order.forEach(i -> header.addTensors(SpecMapping.descriptor(run.config().tensors().get(i))));
    return header.build();
  }

  static ParametersEnd end(Run run, List<Integer> order) {
    long[] sizes = run.tensorSizes();
    return ParametersEnd.newBuilder()
        .setTotalElements(order.stream().mapToLong(i -> sizes[i]).sum())
        .build();
  }
}
