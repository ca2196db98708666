package dev.roadless.checkpoint.store;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Checkpoint names: 1 to 128 characters from {@code [a-z0-9._-]}, starting with a letter or digit.
 * A name is one directory below the checkpoint directory, so it can hold no separator, cannot be
 * {@code .} or {@code ..}, and cannot start with the dot that marks the store's own staging and
 * trash directories.
 */
public final class CheckpointNames {
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,127}");

  private CheckpointNames() {}

  /** True for a valid name. */
  public static boolean isValid(String name) {
    return name != null && NAME.matcher(name).matches();
  }

  /**
   * Refuses an invalid name.
   *
   * @param field the request field that held it, for ErrorInfo
   * @throws RoadlessException INVALID_CHECKPOINT_NAME
   */
  public static String check(String name, String field) {
    if (!isValid(name)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INVALID_CHECKPOINT_NAME,
              "checkpoint name '"
                  + abbreviate(name)
                  + "' must match [a-z0-9][a-z0-9._-]{0,127} (no '/', no leading '.')")
          .with("field", field)
          .build();
    }
    return name;
  }

  /** The default name of a checkpoint: {@code <run>-step<k>-<suffix>}, for example ema or state. */
  public static String defaultName(String runId, long step, String suffix) {
    return check(runId + "-step" + step + "-" + suffix.toLowerCase(Locale.ROOT), "name");
  }

  private static String abbreviate(String s) {
    if (s == null) {
      return "";
    }
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }
}
