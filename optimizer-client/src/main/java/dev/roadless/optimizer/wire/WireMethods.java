package dev.roadless.optimizer.wire;

import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import io.grpc.MethodDescriptor;

/**
 * The tensor-streaming methods of {@code OptimizerService} with the chunk fast path ({@link
 * ChunkMarshaller}): same names, same bytes on the wire, so they talk to any client or server of
 * the service. Messages are typed {@code Object}: outbound a generated message or a {@link
 * FloatChunkOut}; inbound a generated message or an {@link InboundChunk}, which the receiver must
 * close.
 */
public final class WireMethods {
  private WireMethods() {}

  /** PushGradients: requests are PushGradientsRequest or FloatChunkOut / InboundChunk. */
  public static final MethodDescriptor<Object, PushGradientsResponse> PUSH_GRADIENTS =
      OptimizerServiceGrpc.getPushGradientsMethod().toBuilder(
              new ChunkMarshaller<>(
                  PushGradientsRequest.getDefaultInstance(),
                  m -> m.hasChunk() ? m.getChunk() : null),
              OptimizerServiceGrpc.getPushGradientsMethod().getResponseMarshaller())
          .build();

  /** Train: both directions carry chunks. */
  public static final MethodDescriptor<Object, Object> TRAIN =
      OptimizerServiceGrpc.getTrainMethod().toBuilder(
              new ChunkMarshaller<>(
                  TrainRequest.getDefaultInstance(), m -> m.hasChunk() ? m.getChunk() : null),
              new ChunkMarshaller<>(
                  TrainResponse.getDefaultInstance(), m -> m.hasChunk() ? m.getChunk() : null))
          .build();

  /** GetParameters: responses are GetParametersResponse or FloatChunkOut / InboundChunk. */
  public static final MethodDescriptor<GetParametersRequest, Object> GET_PARAMETERS =
      OptimizerServiceGrpc.getGetParametersMethod().toBuilder(
              OptimizerServiceGrpc.getGetParametersMethod().getRequestMarshaller(),
              new ChunkMarshaller<>(
                  GetParametersResponse.getDefaultInstance(),
                  m -> m.hasChunk() ? m.getChunk() : null))
          .build();

  /** Closes {@code message} if it is an {@link InboundChunk} nobody will read. */
  public static void discard(Object message) {
    if (message instanceof InboundChunk chunk) {
      chunk.close();
    }
  }
}
