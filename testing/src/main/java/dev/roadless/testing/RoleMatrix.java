package dev.roadless.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.rpc.ErrorInfo;
import dev.roadless.common.error.Errors;
import dev.roadless.common.security.AccessFile;
import dev.roadless.common.security.BearerToken;
import dev.roadless.common.security.DevPki;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The callers of the role-by-RPC tests every service has (one token per role, an anonymous caller)
 * and what those tests expect of a call: an allowed caller is never refused for its credentials;
 * anyone else gets UNAUTHENTICATED (no credentials) or PERMISSION_DENIED (known, not granted), each
 * with its ErrorInfo reason, the caller's identity and the run it asked for.
 */
public final class RoleMatrix {
  /** The caller without credentials. */
  public static final String ANONYMOUS = "anonymous";

  /** Every caller of the matrix: a role on {@code team-a-*} each, the wrong run, anonymous. */
  public static final List<String> CALLERS =
      List.of("trainer", "reader", "operator", "admin", "wrong-run", ANONYMOUS);

  /**
   * What each caller is granted: its own role on {@code team-a-*}, admin everywhere, and the wrong
   * run's caller operator and admin of {@code team-b-*} only.
   */
  public static final Map<String, String> GRANTS =
      Map.of(
          "trainer", "team-a-*=trainer",
          "reader", "team-a-*=reader",
          "operator", "team-a-*=operator",
          "admin", "*=admin",
          "wrong-run", "team-b-*=operator team-b-*=admin");

  private RoleMatrix() {}

  /** {@code tls} with the caller's bearer token, or {@code tls} alone for no token (anonymous). */
  public static ChannelCredentials as(ChannelCredentials tls, String token) {
    return token == null
        ? tls
        : CompositeChannelCredentials.create(tls, BearerToken.of(token, false));
  }

  /** A fresh token for every caller but {@link #ANONYMOUS}, in {@link #CALLERS} order. */
  public static Map<String, String> newTokens() {
    Map<String, String> tokens = new LinkedHashMap<>();
    for (String caller : CALLERS) {
      if (!caller.equals(ANONYMOUS)) {
        tokens.put(caller, DevPki.newToken());
      }
    }
    return tokens;
  }

  /** Access-file lines granting each token's caller {@code grants.get(caller)}. */
  public static String accessLines(Map<String, String> tokens, Map<String, String> grants) {
    StringBuilder text = new StringBuilder();
    tokens.forEach(
        (caller, token) ->
            text.append(caller)
                .append(' ')
                .append(AccessFile.sha256Hex(token))
                .append(' ')
                .append(grants.get(caller))
                .append('\n'));
    return text.toString();
  }

  /** Every RPC with every caller: the matrix's cases. */
  public static Stream<Arguments> cases(Enum<?>[] rpcs) {
    return Arrays.stream(rpcs).flatMap(rpc -> CALLERS.stream().map(c -> Arguments.of(rpc, c)));
  }

  /** The status code of a call's failure, OK for none. */
  public static Status.Code code(Throwable failure) {
    return failure == null ? Status.Code.OK : Status.fromThrowable(failure).getCode();
  }

  /** An allowed caller: whatever the call answered, it was not refused for its credentials. */
  public static void assertNotRefused(Throwable failure) {
    assertNotEquals(Status.Code.UNAUTHENTICATED, code(failure), String.valueOf(failure));
    assertNotEquals(Status.Code.PERMISSION_DENIED, code(failure), String.valueOf(failure));
  }

  /**
   * A caller without the grant: UNAUTHENTICATED for {@link #ANONYMOUS}, else PERMISSION_DENIED
   * naming the caller and {@code runId} ("" for a server-wide call).
   */
  public static void assertRefused(Throwable failure, String caller, String runId) {
    boolean anonymous = caller.equals(ANONYMOUS);
    assertEquals(
        anonymous ? Status.Code.UNAUTHENTICATED : Status.Code.PERMISSION_DENIED,
        code(failure),
        String.valueOf(failure));
    ErrorInfo info = Errors.errorInfo(failure);
    assertNotNull(info, "ErrorInfo");
    assertEquals("roadless.dev", info.getDomain());
    assertEquals(anonymous ? "UNAUTHENTICATED" : "PERMISSION_DENIED", info.getReason());
    if (!anonymous) {
      assertEquals(caller, info.getMetadataOrThrow("identity"));
      assertEquals(runId, info.getMetadataOrDefault("run_id", ""));
    }
  }

  /** The call fails with {@code reason} in its ErrorInfo. */
  public static void assertReason(String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    ErrorInfo info = Errors.errorInfo(e);
    assertNotNull(info, "ErrorInfo of " + e);
    assertEquals(reason, info.getReason(), e.toString());
  }
}
