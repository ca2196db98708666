package dev.roadless.common.security;

import dev.roadless.common.error.RoadlessException;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Authentication and authorization of every Roadless call, as one server interceptor installed
 * outermost ({@code ServerBuilder.intercept}): it finds the caller ({@link AccessControl}), finds
 * the call's row in {@link RpcPolicy}, checks the run of every inbound message before the service
 * sees it, filters listings, and audits. Health and reflection stay open. A refused call is closed
 * with UNAUTHENTICATED or PERMISSION_DENIED (with ErrorInfo) before its message reaches the
 * service, so nothing changes.
 */
public final class Authorization implements ServerInterceptor {
  /** The metadata key of bearer tokens: {@code authorization: Bearer <token>}. */
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** Names the runs a request is about, where the request itself does not. */
  @FunctionalInterface
  public interface RunResolver {
    /**
     * The runs the request is about; empty when none (the call is then server-wide), null to use
     * the request's own {@code run_id}.
     */
    List<String> runs(Object request);
  }

  private final AccessControl access;
  private final Audit audit;
  private final Map<String, RunResolver> resolvers;

  private Authorization(AccessControl access, Audit audit, Map<String, RunResolver> resolvers) {
    this.access = access;
    this.audit = audit;
    this.resolvers = Map.copyOf(resolvers);
  }

  public static Builder builder(AccessControl access, Audit audit) {
    return new Builder(access, audit);
  }

  /** Collects the service's run resolvers. */
  public static final class Builder {
    private final AccessControl access;
    private final Audit audit;
    private final Map<String, RunResolver> resolvers = new HashMap<>();

    private Builder(AccessControl access, Audit audit) {
      this.access = access;
      this.audit = audit;
    }

    /** How {@code fullMethodName}'s requests name their run, when not by their run_id. */
    public Builder resolver(String fullMethodName, RunResolver resolver) {
      if (RpcPolicy.rule(fullMethodName) == null) {
        throw new IllegalArgumentException("no policy row for " + fullMethodName);
      }
      resolvers.put(fullMethodName, resolver);
      return this;
    }

    public Authorization build() {
      return new Authorization(access, audit, resolvers);
    }
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String service = call.getMethodDescriptor().getServiceName();
    if (service == null || !service.startsWith("roadless.")) {
      return next.startCall(call, headers); // health, reflection
    }
    String method = call.getMethodDescriptor().getFullMethodName();
    AccessFile.Identity caller;
    try {
      caller =
          access.authenticate(
              headers.get(AUTHORIZATION),
              call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
    } catch (RoadlessException e) {
      audit.denied(null, method, null, "UNAUTHENTICATED", e.getMessage());
      GuardedCall.closeWith(call, e);
      return new ServerCall.Listener<>() {};
    }
    GuardedCall<Q, R> guarded =
        new GuardedCall<>(
            call, caller, method, RpcPolicy.rule(method), resolvers.get(method), audit);
    return guarded.listen(next.startCall(guarded, headers));
  }
}
