package dev.roadless.optimizer.client;

import com.google.protobuf.UnsafeByteOperations;
import dev.roadless.common.error.Errors;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.optimizer.wire.WireMethods;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryResponse;
import dev.roadless.proto.optimizer.v1.CreateRunRequest;
import dev.roadless.proto.optimizer.v1.CreateRunResponse;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.GetRunStatusRequest;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersRequest;
import dev.roadless.proto.optimizer.v1.UploadHeader;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesRequest;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Java client of the optimizer service, for trainers and other services. Takes a {@link Channel}
 * the caller owns. Every call has a deadline; UNAVAILABLE is retried with exponential backoff and
 * jitter (every call is idempotent, pushes included), behind a circuit breaker that opens when the
 * server keeps failing. Refusals (INVALID_ARGUMENT, ABORTED, ...) are not retried: they come back
 * as {@link StatusRuntimeException} with ErrorInfo ({@link #reason}).
 */
public final class OptimizerClient {
  /**
   * Bytes a tensor stream may queue in the transport before it waits: a few 1 MiB chunks, so the
   * socket stays busy while the next chunk is encoded (gRPC's default is 32 KiB).
   */
  static final int ON_READY_BYTES = 4 << 20;

  private final Channel channel;
  private final OptimizerServiceGrpc.OptimizerServiceBlockingStub blocking;
  private final OptimizerServiceGrpc.OptimizerServiceStub async;
  private final ClientOptions options;
  private final Resilience resilience;

  public OptimizerClient(Channel channel, ClientOptions options) {
    this.channel = channel;
    this.blocking = OptimizerServiceGrpc.newBlockingStub(channel);
    this.async = OptimizerServiceGrpc.newStub(channel);
    this.options = options;
    this.resilience = Resilience.of("roadless-optimizer", options);
  }

  /** The ErrorInfo reason of a failed call ("RUN_NOT_FOUND", ...), or "" when it has none. */
  public static String reason(Throwable t) {
    var info = Errors.errorInfo(t);
    return info == null ? "" : info.getReason();
  }

  /** Creates the run, or finds it if it exists with the same spec. */
  public CreateRunResponse createRun(String runId, RunSpec spec) {
    return call(
        () ->
            deadline(blocking)
                .createRun(CreateRunRequest.newBuilder().setRunId(runId).setSpec(spec).build()));
  }

  public RunStatus status(String runId) {
    return call(
        () ->
            deadline(blocking)
                .getRunStatus(GetRunStatusRequest.newBuilder().setRunId(runId).build())
                .getStatus());
  }

  /** Uploads initial values (float32, run order); true if stored, false if already identical. */
  public boolean uploadInitialValues(String runId, List<String> names, float[][] values) {
    return call(
        () -> {
          Iterator<UploadInitialValuesRequest> messages =
              Stream.concat(
                      Stream.of(
                          UploadInitialValuesRequest.newBuilder()
                              .setHeader(UploadHeader.newBuilder().setRunId(runId))
                              .build()),
                      Stream.concat(
                          chunks(names, values, DataType.DATA_TYPE_FLOAT32)
                              .map(
                                  c -> UploadInitialValuesRequest.newBuilder().setChunk(c).build()),
                          Stream.of(
                              UploadInitialValuesRequest.newBuilder()
                                  .setCommit(commit(values))
                                  .build())))
                  .iterator();
          return ClientStreams.<UploadInitialValuesRequest, UploadInitialValuesResponse>send(
                  obs -> deadline(async).uploadInitialValues(obs), messages)
              .getStored();
        });
  }

  /** Pushes one replica's mean gradient for a step (float32 or bfloat16 on the wire). */
  public PushGradientsResponse push(
      String runId,
      int replica,
      long step,
      List<String> names,
      float[][] gradient,
      DataType dtype) {
    return call(
        () -> {
          Iterator<Object> messages =
              new PushMessages<>(
                  PushGradientsRequest.newBuilder()
                      .setHeader(PushMessages.header(runId, replica, step, dtype))
                      .build(),
                  c -> PushGradientsRequest.newBuilder().setChunk(c).build(),
                  c -> PushGradientsRequest.newBuilder().setCommit(c).build(),
                  names,
                  gradient,
                  dtype,
                  options.chunkBytes());
          return ClientStreams.<Object, PushGradientsResponse>send(
              obs ->
                  ClientCalls.asyncClientStreamingCall(
                      channel.newCall(
                          WireMethods.PUSH_GRADIENTS, streamOptions(options.callDeadline())),
                      obs),
              messages);
        });
  }

  /** Reads a sequence at the run's current step, or waits until it reaches {@code minStep}. */
  public Parameters parameters(String runId, Sequence sequence, long minStep) {
    return call(() -> readParameters(runId, sequence, minStep));
  }

  private Parameters readParameters(String runId, Sequence sequence, long minStep) {
    GetParametersRequest request =
        GetParametersRequest.newBuilder()
            .setRunId(runId)
            .setSequence(sequence)
            .setMinStep(minStep)
            .setMaxChunkBytes(options.chunkBytes())
            .build();
    Duration deadline = minStep > 0 ? options.waitDeadline() : options.callDeadline();
    return ParameterReader.read(
        ClientCalls.blockingServerStreamingCall(
            channel, WireMethods.GET_PARAMETERS, streamOptions(deadline), request));
  }

  /**
   * The replica's shared-memory segment, created by the server on first use. Most callers let
   * {@link ReplicaSession} do this.
   */
  public AttachSharedMemoryResponse attachSharedMemory(
      String runId, int replica, byte[] localityProof) {
    return call(
        () ->
            deadline(blocking)
                .attachSharedMemory(
                    AttachSharedMemoryRequest.newBuilder()
                        .setRunId(runId)
                        .setReplica(replica)
                        .setLocalityProof(com.google.protobuf.ByteString.copyFrom(localityProof))
                        .build()));
  }

  /** Opens a Train stream (no deadline: it lives as long as training; each step has its own). */
  TrainStream openTrain() {
    return new TrainStream(channel, CallOptions.DEFAULT.withOnReadyThreshold(ON_READY_BYTES));
  }

  ClientOptions options() {
    return options;
  }

  private static CallOptions streamOptions(Duration deadline) {
    return CallOptions.DEFAULT
        .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS)
        .withOnReadyThreshold(ON_READY_BYTES);
  }

  /** Changes a group's hyperparameters from the next step on (only the fields set). */
  public void updateHyperparameters(String runId, String group, Hyperparameters change) {
    call(
        () ->
            deadline(blocking)
                .updateHyperparameters(
                    UpdateHyperparametersRequest.newBuilder()
                        .setRunId(runId)
                        .setGroup(group)
                        .setHyperparameters(change)
                        .build()));
  }

  /**
   * Changes a group's hyperparameters only while the run is at {@code expectedStep} completed
   * steps, and returns the group after the change. A retry after the run moved on answers ABORTED
   * (STEP_MISMATCH) instead of applying the change at another step.
   */
  public GroupStatus updateHyperparameters(
      String runId, String group, Hyperparameters change, long expectedStep) {
    return call(() ->
            deadline(blocking)
                .updateHyperparameters(
                    UpdateHyperparametersRequest.newBuilder()
                        .setRunId(runId)
                        .setGroup(group)
                        .setHyperparameters(change)
                        .setExpectedStep(expectedStep)
                        .build()))
        .getGroup();
  }

  /** Runs {@code attempt} with retries on UNAVAILABLE and the circuit breaker. */
  <T> T call(Supplier<T> attempt) {
    return resilience.call(attempt);
  }

  private <S extends io.grpc.stub.AbstractStub<S>> S deadline(S stub) {
    return stub.withDeadlineAfter(options.callDeadline().toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * Chunks made one at a time as the transport asks for them, so a push never sits in memory twice.
   */
  private Stream<TensorChunk> chunks(List<String> names, float[][] values, DataType dtype) {
    int width = dtype == DataType.DATA_TYPE_BFLOAT16 ? 2 : 4;
    int per = Math.max(1, options.chunkBytes() / width);
    return IntStream.range(0, names.size())
        .boxed()
        .flatMap(
            t ->
                IntStream.iterate(0, off -> off < values[t].length, off -> off + per)
                    .mapToObj(off -> chunk(names.get(t), values[t], off, per, dtype, width)));
  }

  /**
   * One chunk of {@code v} from {@code off}: at most {@code per} elements, encoded little-endian as
   * float32 ({@code width} 4) or bfloat16 ({@code width} 2, rounded to nearest even).
   */
  static TensorChunk chunk(String name, float[] v, int off, int per, DataType dtype, int width) {
    int n = Math.min(per, v.length - off);
    ByteBuffer buf = ByteBuffer.allocate(n * width).order(ByteOrder.LITTLE_ENDIAN);
    if (width == 4) {
      buf.asFloatBuffer().put(v, off, n);
    } else {
      for (int i = 0; i < n; i++) {
        buf.putShort(2 * i, Bfloat16.fromFloat(v[off + i]));
      }
    }
    return TensorChunk.newBuilder()
        .setName(name)
        .setElementOffset(off)
        .setDtype(dtype)
        .setData(UnsafeByteOperations.unsafeWrap(buf.array()))
        .build();
  }

  private static StreamCommit commit(float[][] values) {
    long total = 0;
    for (float[] v : values) {
      total += v.length;
    }
    return StreamCommit.newBuilder().setTotalElements(total).build();
  }

  /** Reads a GetParameters stream into arrays, checking that every element arrived. */
  static final class ParameterReader {
    private ParameterReader() {}

    static Parameters read(Iterator<Object> stream) {
      ParametersDecoder decoder = new ParametersDecoder(null);
      boolean first = true;
      while (stream.hasNext()) {
        Object m = stream.next();
        try {
          if (m instanceof InboundChunk c) {
            decoder.chunk(c);
          } else if (m instanceof GetParametersResponse r && r.hasHeader() && first) {
            decoder.header(r.getHeader());
          } else if (m instanceof GetParametersResponse r && r.hasEnd()) {
            return decoder.end(r.getEnd());
          } else {
            throw ParametersDecoder.dataLoss("unexpected parameter message");
          }
          first = false;
        } finally {
          WireMethods.discard(m);
        }
      }
      throw ParametersDecoder.dataLoss(
          first ? "empty parameter stream" : "parameter stream ended early");
    }
  }
}
