package dev.roadless.common.runtime;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.function.BooleanSupplier;

/** The interceptors every Roadless server installs, outermost first. */
public final class ServerInterceptors {
  private ServerInterceptors() {}

  /**
   * Maps exceptions thrown by handlers to statuses with ErrorInfo, in one place, so handlers just
   * throw {@link RoadlessException}. A handler that fails is closed once; later messages are
   * ignored.
   */
  public static ServerInterceptor exceptionMapper() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        Guarded<Q, R> guarded = new Guarded<>(call);
        ServerCall.Listener<Q> delegate;
        try {
          delegate = next.startCall(guarded, headers);
        } catch (RuntimeException e) {
          guarded.fail(e);
          return new ServerCall.Listener<>() {};
        }
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(delegate) {
          @Override
          public void onMessage(Q message) {
            if (!guarded.closed) {
              guarded.run(() -> super.onMessage(message));
            } else if (message instanceof AutoCloseable held) {
              release(held); // a message holding transport buffers (a zero-copy chunk)
            }
          }

          @Override
          public void onHalfClose() {
            if (!guarded.closed) {
              guarded.run(super::onHalfClose);
            }
          }

          @Override
          public void onReady() {
            if (!guarded.closed) {
              guarded.run(super::onReady);
            }
          }
        };
      }
    };
  }

  private static void release(AutoCloseable held) {
    try {
      held.close();
    } catch (Exception ignored) {
      // Giving buffers back cannot usefully fail.
    }
  }

  private static final class Guarded<Q, R>
      extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
    private volatile boolean closed;

    Guarded(ServerCall<Q, R> call) {
      super(call);
    }

    void run(Runnable action) {
      try {
        action.run();
      } catch (RuntimeException e) {
        fail(e);
      }
    }

    synchronized void fail(Throwable t) {
      if (closed) {
        return;
      }
      StatusRuntimeException status = Errors.toStatus(t);
      Metadata trailers = status.getTrailers() == null ? new Metadata() : status.getTrailers();
      close(status.getStatus(), trailers);
    }

    @Override
    public synchronized void close(Status status, Metadata trailers) {
      if (closed) {
        return;
      }
      closed = true;
      super.close(status, trailers);
    }
  }

  /** Refuses Roadless calls with UNAVAILABLE (SERVER_NOT_READY) while restoring or draining. */
  public static ServerInterceptor readiness(BooleanSupplier ready) {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String service = call.getMethodDescriptor().getServiceName();
        if (!ready.getAsBoolean() && service != null && service.startsWith("roadless.")) {
          StatusRuntimeException e =
              Errors.toStatus(
                  new RoadlessException(
                      ErrorReason.ERROR_REASON_SERVER_NOT_READY,
                      "server is restoring snapshots or draining; retry with backoff"));
          call.close(e.getStatus(), e.getTrailers());
          return new ServerCall.Listener<>() {};
        }
        return next.startCall(call, headers);
      }
    };
  }

  /** Records every call's duration and status code. */
  public static ServerInterceptor metrics(ServiceMetrics metrics) {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        long start = System.nanoTime();
        String method = call.getMethodDescriptor().getBareMethodName();
        ServerCall<Q, R> timed =
            new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
              @Override
              public void close(Status status, Metadata trailers) {
                metrics.callFinished(
                    method, status.getCode().name(), (System.nanoTime() - start) / 1e9);
                super.close(status, trailers);
              }
            };
        return next.startCall(timed, headers);
      }
    };
  }
}
