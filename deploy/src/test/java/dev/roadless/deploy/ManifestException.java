package dev.roadless.deploy;

/** A manifest that does not parse into the Kubernetes models, with what and where. */
final class ManifestException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  ManifestException(String message) {
    super(message);
  }

  ManifestException(String message, Throwable cause) {
    super(message, cause);
  }
}
