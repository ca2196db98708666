package dev.roadless.deploy.demo;

/** Why the demo cannot go on, in words for its user; the demo prints it and exits with status 1. */
final class DemoException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  DemoException(String message) {
    super(message);
  }
}
