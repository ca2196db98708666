package dev.roadless.common.security;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;

/**
 * Sends {@code authorization: Bearer <token>} with every call. The token comes from a file (read
 * again at most every few seconds, so a rotated Secret is picked up) or is given directly. It is
 * never sent over a connection without TLS unless plaintext was asked for explicitly.
 */
public final class BearerToken extends CallCredentials {
  private static final long REREAD_NANOS = 5_000_000_000L;

  private final Path file;
  private final boolean allowPlaintext;
  private volatile String token;
  private volatile long readAt;

  private BearerToken(Path file, String token, boolean allowPlaintext) {
    this.file = file;
    this.token = token;
    this.allowPlaintext = allowPlaintext;
    this.readAt = System.nanoTime();
  }

  /** A fixed token. */
  public static BearerToken of(String token, boolean allowPlaintext) {
    if (token == null || token.isBlank()) {
      throw new IllegalArgumentException("the token is empty");
    }
    return new BearerToken(null, token.strip(), allowPlaintext);
  }

  /** The token in {@code file} (surrounding white space ignored); throws if unreadable. */
  public static BearerToken fromFile(Path file, boolean allowPlaintext) throws IOException {
    String t = read(file);
    if (t.isEmpty()) {
      throw new IllegalArgumentException("token file " + file + " is empty");
    }
    return new BearerToken(file, t, allowPlaintext);
  }

  private static String read(Path file) throws IOException {
    return new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
  }

  private String current() {
    if (file != null && System.nanoTime() - readAt > REREAD_NANOS) {
      readAt = System.nanoTime();
      try {
        String t = read(file);
        if (!t.isEmpty()) {
          token = t;
        }
      } catch (IOException e) {
        // Keep the last token; the server says UNAUTHENTICATED if it is no longer valid.
      }
    }
    return token;
  }

  @Override
  public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
    if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY && !allowPlaintext) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription(
              "refusing to send a bearer token over a connection without TLS"));
      return;
    }
    Metadata headers = new Metadata();
    headers.put(Authorization.AUTHORIZATION, "Bearer " + current());
    applier.apply(headers);
  }
}
