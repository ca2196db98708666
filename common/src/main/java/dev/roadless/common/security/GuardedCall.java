package dev.roadless.common.security;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * One authenticated call: checks each inbound message's run against the caller's grants before the
 * service sees it, filters listings on the way out, audits mutating calls when they end. After a
 * refusal the service's listener gets {@code onCancel} (as if the client had cancelled: nothing is
 * applied) and whatever it still sends or closes is dropped.
 */
final class GuardedCall<Q, R> extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
  private final AccessFile.Identity caller;
  private final String method;
  private final RpcPolicy.Rule rule;
  private final Authorization.RunResolver resolver;
  private final Audit audit;
  private final List<String> runs = Collections.synchronizedList(new ArrayList<>());
  private boolean closed;
  private boolean refused;

  GuardedCall(
      ServerCall<Q, R> call,
      AccessFile.Identity caller,
      String method,
      RpcPolicy.Rule rule,
      Authorization.RunResolver resolver,
      Audit audit) {
    super(call);
    this.caller = caller;
    this.method = method;
    this.rule = rule;
    this.resolver = resolver;
    this.audit = audit;
  }

  /** Closes a call that never reached the service with the refusal's status. */
  static void closeWith(ServerCall<?, ?> call, RoadlessException refusal) {
    StatusRuntimeException s = Errors.toStatus(refusal);
    call.close(s.getStatus(), s.getTrailers() == null ? new Metadata() : s.getTrailers());
  }

  ServerCall.Listener<Q> listen(ServerCall.Listener<Q> delegate) {
    return new ServerCall.Listener<>() {
      private boolean denied;

      @Override
      public void onMessage(Q message) {
        if (!denied) {
          try {
            check(message);
          } catch (RoadlessException e) {
            denied = true;
            refuse(e);
            delegate.onCancel();
          }
        }
        if (denied) {
          release(message);
          return;
        }
        delegate.onMessage(message);
      }

      @Override
      public void onHalfClose() {
        if (!denied) {
          delegate.onHalfClose();
        }
      }

      @Override
      public void onCancel() {
        if (!denied) {
          delegate.onCancel();
        }
      }

      @Override
      public void onComplete() {
        if (!denied) {
          delegate.onComplete();
        }
      }

      @Override
      public void onReady() {
        if (!denied) {
          delegate.onReady();
        }
      }
    };
  }

  private void check(Q message) {
    if (rule == null) {
      // A roadless method without a row: only an admin of every run may call it.
      requireEverywhereAdmin(null);
      return;
    }
    List<String> named = resolver == null ? null : resolver.runs(message);
    List<String> asked = named == null ? Messages.runIds(message) : named;
    if (asked.isEmpty()) {
      if (!runs.isEmpty() || rule.scope() == RpcPolicy.Scope.LIST) {
        return; // a stream's chunk or commit after its header; an unfiltered listing
      }
      requireEverywhereAdmin(null);
      return;
    }
    Set<Role> allowed = rule.rolesFor(Messages.asksForTrain(message));
    for (String run : asked) {
      Set<Role> held = caller.rolesOn(run);
      if (!held.contains(Role.ADMIN) && Collections.disjoint(held, allowed)) {
        throw denied(run, allowed);
      }
      if (!runs.contains(run)) {
        runs.add(run);
      }
    }
  }

  private void requireEverywhereAdmin(String run) {
    if (!caller.holdsEverywhere(Role.ADMIN)) {
      throw denied(run, EnumSet.of(Role.ADMIN));
    }
  }

  private RoadlessException denied(String run, Set<Role> allowed) {
    String required =
        allowed.stream().map(Role::fileName).sorted().collect(Collectors.joining(","));
    RoadlessException.Builder b =
        RoadlessException.of(
                ErrorReason.ERROR_REASON_PERMISSION_DENIED,
                "identity '"
                    + caller.name()
                    + "' may not call "
                    + method.substring(method.indexOf('/') + 1)
                    + (run == null ? " (server-wide: needs admin on *)" : " on run '" + run + "'")
                    + "; needs one of: "
                    + required)
            .with("identity", caller.name())
            .with("method", method)
            .with("required", required);
    if (run != null) {
      b.with("run_id", run);
    }
    return b.build();
  }

  private synchronized void refuse(RoadlessException e) {
    if (closed) {
      return;
    }
    refused = true;
    audit.denied(
        caller.name(), method, e.metadata().get("run_id"), "PERMISSION_DENIED", e.getMessage());
    StatusRuntimeException s = Errors.toStatus(e);
    closed = true;
    super.close(s.getStatus(), s.getTrailers() == null ? new Metadata() : s.getTrailers());
  }

  @Override
  public synchronized void sendMessage(R message) {
    if (closed) {
      return;
    }
    if (rule != null
        && rule.scope() == RpcPolicy.Scope.LIST
        && !caller.holdsEverywhere(Role.ADMIN)) {
      Set<Role> allowed = rule.roles();
      message =
          Messages.filter(
              message,
              run -> {
                Set<Role> held = caller.rolesOn(run);
                return held.contains(Role.ADMIN) || !Collections.disjoint(held, allowed);
              });
    }
    super.sendMessage(message);
  }

  @Override
  public synchronized void close(Status status, Metadata trailers) {
    if (closed) {
      return;
    }
    closed = true;
    if (!refused && rule != null && rule.mutating()) {
      audit.mutation(caller.name(), method, List.copyOf(runs), status.getCode().name());
    }
    super.close(status, trailers);
  }

  private static void release(Object message) {
    if (message instanceof AutoCloseable held) {
      try {
        held.close(); // a zero-copy chunk holding transport buffers
      } catch (Exception ignored) {
        // Giving buffers back cannot usefully fail.
      }
    }
  }
}
