package dev.roadless.optimizer.server;

import com.google.protobuf.ByteString;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** Hand-built streams, for sending exactly the malformed input a test needs. */
final class RawStreams {
  private RawStreams() {}

  static PushGradientsRequest header(String run, int replica, long step, DataType dtype) {
    return PushGradientsRequest.newBuilder()
        .setHeader(
            GradientHeader.newBuilder()
                .setRunId(run)
                .setReplica(replica)
                .setStep(step)
                .setDtype(dtype))
        .build();
  }

  static PushGradientsRequest chunk(String name, long offset, float... values) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(values);
    return PushGradientsRequest.newBuilder()
        .setChunk(
            TensorChunk.newBuilder()
                .setName(name)
                .setElementOffset(offset)
                .setDtype(DataType.DATA_TYPE_FLOAT32)
                .setData(ByteString.copyFrom(buf.array())))
        .build();
  }

  static PushGradientsRequest commit(long total) {
    return PushGradientsRequest.newBuilder()
        .setCommit(StreamCommit.newBuilder().setTotalElements(total))
        .build();
  }

  /** A well-formed push of whole tensors, one chunk each. */
  static List<PushGradientsRequest> push(String run, int replica, long step, float[][] g) {
    List<PushGradientsRequest> out = new ArrayList<>();
    out.add(header(run, replica, step, DataType.DATA_TYPE_FLOAT32));
    long total = 0;
    for (int t = 0; t < g.length; t++) {
      out.add(chunk(Harness.NAMES.get(t), 0, g[t]));
      total += g[t].length;
    }
    out.add(commit(total));
    return out;
  }

  /** Sends the messages (half-closing when {@code close}) and returns the answer or throws. */
  static PushGradientsResponse send(
      OptimizerServiceGrpc.OptimizerServiceStub stub, List<PushGradientsRequest> messages)
      throws Exception {
    CompletableFuture<PushGradientsResponse> result = new CompletableFuture<>();
    StreamObserver<PushGradientsRequest> requests =
        stub.withDeadlineAfter(20, TimeUnit.SECONDS)
            .pushGradients(
                new StreamObserver<>() {
                  private PushGradientsResponse last;

                  @Override
                  public void onNext(PushGradientsResponse value) {
                    last = value;
                  }

                  @Override
                  public void onError(Throwable t) {
                    result.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {
                    result.complete(last);
                  }
                });
    messages.forEach(requests::onNext);
    requests.onCompleted();
    try {
      return result.get(30, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw (Exception) e.getCause();
    }
  }
}
