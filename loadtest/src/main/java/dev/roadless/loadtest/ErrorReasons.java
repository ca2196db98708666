package dev.roadless.loadtest;

import dev.roadless.common.error.Errors;

/** The ErrorInfo reason of a failure, or "" when the status carries none. */
final class ErrorReasons {
  private ErrorReasons() {}

  static String of(Throwable t) {
    var info = Errors.errorInfo(t);
    return info == null ? "" : info.getReason();
  }
}
