package dev.roadless.common;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.regex.Pattern;

/** The rule every service applies to run ids: 1-63 characters of [a-z0-9._-], starting [a-z0-9]. */
public final class RunIds {
  private static final Pattern RUN_ID = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");

  private RunIds() {}

  /** Throws INVALID_RUN_ID (naming the field {@code run_id}) unless {@code id} is valid. */
  public static void check(String id) {
    if (id == null || !RUN_ID.matcher(id).matches()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INVALID_RUN_ID,
              "run_id '" + id + "' must match [a-z0-9][a-z0-9._-]{0,62}")
          .with("field", "run_id")
          .build();
    }
  }
}
