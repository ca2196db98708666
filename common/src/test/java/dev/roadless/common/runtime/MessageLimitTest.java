package dev.roadless.common.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The documented message limit, checked before parsing, for plain and inflated streams. */
class MessageLimitTest {
  private static final int LIMIT = 16;

  /** Strings as UTF-8 bytes. */
  private static final MethodDescriptor.Marshaller<String> TEXT =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) {
          return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public String parse(InputStream stream) {
          try {
            return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
          } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        }
      };

  /** A stream whose length is known without reading, as the transport's uncompressed messages. */
  private static final class Known extends ByteArrayInputStream implements KnownLength {
    Known(byte[] bytes) {
      super(bytes);
    }
  }

  private static final Object SCHEMA = new Object();

  private final List<String> delivered = new ArrayList<>();

  @Test
  void apply_keepsTheServiceSchema_forServerReflection() {
    method();
    ServerServiceDefinition limited =
        MessageLimit.apply(
            ServerServiceDefinition.builder(
                    io.grpc.ServiceDescriptor.newBuilder("test.Echo")
                        .setSchemaDescriptor(SCHEMA)
                        .build())
                .build(),
            LIMIT);
    assertEquals(SCHEMA, limited.getServiceDescriptor().getSchemaDescriptor());
  }

  private ServerMethodDefinition<String, String> method() {
    MethodDescriptor<String, String> d =
        MethodDescriptor.<String, String>newBuilder(TEXT, TEXT)
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("test.Echo/Say")
            .build();
    ServerServiceDefinition service =
        ServerServiceDefinition.builder(
                io.grpc.ServiceDescriptor.newBuilder("test.Echo")
                    .setSchemaDescriptor(SCHEMA)
                    .addMethod(d)
                    .build())
            .addMethod(
                d,
                (call, headers) ->
                    new ServerCall.Listener<>() {
                      @Override
                      public void onMessage(String message) {
                        delivered.add(message);
                      }
                    })
            .build();
    @SuppressWarnings("unchecked")
    ServerMethodDefinition<String, String> m =
        (ServerMethodDefinition<String, String>)
            MessageLimit.apply(service, LIMIT).getMethod("test.Echo/Say");
    return m;
  }

  /** As grpc does: the parsed request goes to the listener untyped (generics are erased). */
  @SuppressWarnings({"unchecked", "rawtypes"})
  private void deliver(ServerMethodDefinition<String, String> m, InputStream in) {
    Object parsed = ((MethodDescriptor) m.getMethodDescriptor()).parseRequest(in);
    ServerCall.Listener listener = m.getServerCallHandler().startCall(null, new io.grpc.Metadata());
    listener.onMessage(parsed);
  }

  @Test
  void parse_withinLimit_deliveredUnchanged() {
    var m = method();
    deliver(m, new Known("0123456789abcdef".getBytes(StandardCharsets.UTF_8)));
    deliver(m, new ByteArrayInputStream("short".getBytes(StandardCharsets.UTF_8)));
    assertEquals(List.of("0123456789abcdef", "short"), delivered);
  }

  @Test
  void parse_overLimitKnownOrInflated_messageTooLargeWithLimit() {
    var m = method();
    for (InputStream big :
        List.of(
            new Known(new byte[LIMIT + 1]),
            (InputStream) new ByteArrayInputStream(new byte[1 << 20]))) {
      RoadlessException e = assertThrows(RoadlessException.class, () -> deliver(m, big));
      assertEquals(ErrorReason.ERROR_REASON_MESSAGE_TOO_LARGE, e.reason());
      assertEquals(String.valueOf(LIMIT), e.metadata().get("limit"));
    }
    assertEquals(List.of(), delivered);
  }

  @Test
  void transportLimit_twiceTheLimitSaturating() {
    assertEquals(8 << 20, MessageLimit.transportLimit(4 << 20));
    assertEquals(Integer.MAX_VALUE, MessageLimit.transportLimit(Integer.MAX_VALUE));
  }
}
