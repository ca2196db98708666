package dev.roadless.common.runtime;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.ForwardingServerCallListener;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The documented inbound message limit, answered as the contract promises: RESOURCE_EXHAUSTED with
 * ErrorInfo {@code MESSAGE_TOO_LARGE} and {@code limit}, never a bare status or UNKNOWN.
 *
 * <p>grpc-java's transport refuses a message over {@code maxInboundMessageSize} itself, with a bare
 * status and before any application code runs, and a compressed message whose inflated size passes
 * that limit fails inside the parser, which the server reports as UNKNOWN. So the transport is
 * given a larger limit ({@link #transportLimit}) and every request marshaller of a service is
 * wrapped: a message over the documented limit (its serialized size, or its inflated size, read no
 * further than the limit) is not parsed; the handler's listener turns it into a {@link
 * RoadlessException}, which the exception mapper (an interceptor outside this one) sends with
 * ErrorInfo. Only a message over the transport limit still gets the transport's bare status.
 */
public final class MessageLimit {
  /** Stands for a request that was too large; never reaches a handler. */
  private static final Object TOO_LARGE = new Object();

  private MessageLimit() {}

  /**
   * The limit to give the transport ({@code ServerBuilder.maxInboundMessageSize}) for a documented
   * limit of {@code maxMessageBytes}: twice it (at most {@code Integer.MAX_VALUE}), so messages
   * somewhat over the limit reach the check that answers with ErrorInfo.
   */
  public static int transportLimit(int maxMessageBytes) {
    return (int) Math.min(Integer.MAX_VALUE, 2L * maxMessageBytes);
  }

  /**
   * {@code service} with every request checked against {@code maxMessageBytes}. Install it inside
   * {@link ServerInterceptors#exceptionMapper()} (intercept the result, not the other way round).
   */
  public static ServerServiceDefinition apply(
      ServerServiceDefinition service, int maxMessageBytes) {
    ServiceDescriptor original = service.getServiceDescriptor();
    // Same name and schema (server reflection keeps listing the service), checked methods.
    ServiceDescriptor.Builder descriptor =
        ServiceDescriptor.newBuilder(original.getName())
            .setSchemaDescriptor(original.getSchemaDescriptor());
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> method : service.getMethods()) {
      ServerMethodDefinition<?, ?> checked = limited(method, maxMessageBytes);
      methods.add(checked);
      descriptor.addMethod(checked.getMethodDescriptor());
    }
    ServerServiceDefinition.Builder out = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(out::addMethod);
    return out.build();
  }

  private static <Q, R> ServerMethodDefinition<Q, R> limited(
      ServerMethodDefinition<Q, R> method, int maxMessageBytes) {
    MethodDescriptor<Q, R> d = method.getMethodDescriptor();
    MethodDescriptor<Q, R> checked =
        d.toBuilder(
                new Checked<>(d.getRequestMarshaller(), maxMessageBytes), d.getResponseMarshaller())
            .build();
    ServerCallHandler<Q, R> next = method.getServerCallHandler();
    ServerCallHandler<Q, R> handler =
        (call, headers) ->
            new ForwardingServerCallListener.SimpleForwardingServerCallListener<Q>(
                next.startCall(call, headers)) {
              @Override
              public void onMessage(Q message) {
                if (message == TOO_LARGE) {
                  throw RoadlessException.of(
                          ErrorReason.ERROR_REASON_MESSAGE_TOO_LARGE,
                          "a request message is larger than the server's limit of "
                              + maxMessageBytes
                              + " bytes; send smaller chunks")
                      .with("limit", maxMessageBytes)
                      .build();
                }
                super.onMessage(message);
              }
            };
    return ServerMethodDefinition.create(checked, handler);
  }

  /** Measures before parsing; hands the stream on untouched when it is within the limit. */
  private static final class Checked<Q> implements MethodDescriptor.Marshaller<Q> {
    private final MethodDescriptor.Marshaller<Q> inner;
    private final int limit;

    Checked(MethodDescriptor.Marshaller<Q> inner, int limit) {
      this.inner = inner;
      this.limit = limit;
    }

    @Override
    public InputStream stream(Q value) {
      return inner.stream(value);
    }

    @Override
    @SuppressWarnings("unchecked")
    public Q parse(InputStream stream) {
      try {
        if (stream instanceof KnownLength) {
          // Uncompressed: the size is known without reading (and zero-copy paths stay intact).
          if (stream.available() <= limit) {
            return inner.parse(stream);
          }
          stream.close();
          return (Q) TOO_LARGE;
        }
        // Compressed: inflate no further than one byte past the limit.
        byte[] bytes = stream.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1L));
        stream.close();
        if (bytes.length > limit) {
          return (Q) TOO_LARGE;
        }
        return inner.parse(new ByteArrayInputStream(bytes));
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("cannot read a request message", e);
      }
    }
  }
}
