package dev.roadless.common.error;

import dev.roadless.proto.common.v1.ErrorReason;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A refused request: the caller's mistake or a state that does not allow the call. Carries a stable
 * {@link ErrorReason} and the facts a client needs to react; the wire layer turns it into a status
 * with {@code google.rpc.ErrorInfo}. Throwing it means nothing was changed.
 */
public final class RoadlessException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorReason reason;
  private final Map<String, String> metadata;

  public RoadlessException(ErrorReason reason, String message) {
    this(reason, message, Map.of());
  }

  public RoadlessException(ErrorReason reason, String message, Map<String, String> metadata) {
    super(message, null, false, false);
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  public ErrorReason reason() {
    return reason;
  }

  /** Metadata keys as documented on {@code roadless.common.v1.ErrorReason}. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Starts a fluent builder for exceptions with several metadata entries. */
  public static Builder of(ErrorReason reason, String message) {
    return new Builder(reason, message);
  }

  /** Collects metadata in insertion order. */
  public static final class Builder {
    private final ErrorReason reason;
    private final String message;
    private final Map<String, String> metadata = new LinkedHashMap<>();

    private Builder(ErrorReason reason, String message) {
      this.reason = reason;
      this.message = message;
    }

    public Builder with(String key, Object value) {
      metadata.put(key, String.valueOf(value));
      return this;
    }

    public RoadlessException build() {
      return new RoadlessException(reason, message, metadata);
    }
  }
}
