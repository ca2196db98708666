package dev.roadless.common.security;

import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * TLS credentials from PEM files that are read again every {@code reloadMillis} and take effect for
 * new connections when they changed (grpc-java's {@link AdvancedTlsX509KeyManager} and {@link
 * AdvancedTlsX509TrustManager}, which compare the files' modification times; a Kubernetes Secret's
 * symlink swap gives new files, so new times): a certificate rotates without a restart. Keys are
 * PKCS#8 PEM ({@code BEGIN PRIVATE KEY}); certificate files may hold a chain.
 */
public final class TlsFiles {
  private static final Logger LOG = Logger.getLogger(TlsFiles.class.getName());
  private static final ScheduledExecutorService RELOADER =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "roadless-tls-reload");
            t.setDaemon(true);
            return t;
          });

  /** Whether and how a server asks for client certificates. */
  public enum ClientAuth {
    /** Asked for when a client CA is configured; a caller may use a token instead. */
    OPTIONAL,
    /** Every connection must present a certificate from the client CA. */
    REQUIRE
  }

  private TlsFiles() {}

  /**
   * Server credentials: {@code cert} and {@code key} for the server, and with {@code clientCa} (may
   * be null) client certificates verified against it (mutual TLS).
   */
  public static ServerCredentials server(
      Path cert, Path key, Path clientCa, ClientAuth auth, long reloadMillis)
      throws IOException, GeneralSecurityException {
    TlsServerCredentials.Builder b =
        TlsServerCredentials.newBuilder().keyManager(keyManager(cert, key, reloadMillis));
    if (clientCa != null) {
      b.trustManager(
              trustManager(
                  clientCa,
                  AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION,
                  reloadMillis))
          .clientAuth(
              auth == ClientAuth.REQUIRE
                  ? TlsServerCredentials.ClientAuth.REQUIRE
                  : TlsServerCredentials.ClientAuth.OPTIONAL);
    }
    return b.build();
  }

  /**
   * Client credentials: servers verified against {@code ca} (null: the JDK's trusted CAs), with
   * host name verification; with {@code cert} and {@code key} (both or neither) a client
   * certificate for mutual TLS.
   */
  public static ChannelCredentials client(Path ca, Path cert, Path key, long reloadMillis)
      throws IOException, GeneralSecurityException {
    TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
    AdvancedTlsX509TrustManager.Verification v =
        AdvancedTlsX509TrustManager.Verification.CERTIFICATE_AND_HOST_NAME_VERIFICATION;
    if (ca != null) {
      b.trustManager(trustManager(ca, v, reloadMillis));
    } else {
      AdvancedTlsX509TrustManager tm =
          AdvancedTlsX509TrustManager.newBuilder().setVerification(v).build();
      tm.useSystemDefaultTrustCerts();
      b.trustManager(tm);
    }
    if (cert != null) {
      b.keyManager(keyManager(cert, key, reloadMillis));
    }
    return b.build();
  }

  private static AdvancedTlsX509KeyManager keyManager(Path cert, Path key, long reloadMillis)
      throws IOException, GeneralSecurityException {
    if (cert == null || key == null) {
      throw new IllegalArgumentException("a certificate needs its key and a key its certificate");
    }
    AdvancedTlsX509KeyManager km = new AdvancedTlsX509KeyManager();
    km.updateIdentityCredentials(cert.toFile(), key.toFile());
    watch(
        List.of(cert, key),
        () -> km.updateIdentityCredentials(cert.toFile(), key.toFile()),
        reloadMillis);
    return km;
  }

  private static AdvancedTlsX509TrustManager trustManager(
      Path ca, AdvancedTlsX509TrustManager.Verification v, long reloadMillis)
      throws IOException, GeneralSecurityException {
    AdvancedTlsX509TrustManager tm =
        AdvancedTlsX509TrustManager.newBuilder().setVerification(v).build();
    tm.updateTrustCredentials(ca.toFile());
    watch(List.of(ca), () -> tm.updateTrustCredentials(ca.toFile()), reloadMillis);
    return tm;
  }

  /** What a reload does; may fail, leaving the previous credentials in force. */
  @FunctionalInterface
  private interface Load {
    void run() throws IOException, GeneralSecurityException;
  }

  /** Polls the files' content every {@code periodMillis}; loads again when it changed. */
  private static void watch(List<Path> files, Load load, long periodMillis) throws IOException {
    byte[][] seen = {digest(files)};
    RELOADER.scheduleWithFixedDelay(
        () -> {
          try {
            byte[] now = digest(files);
            if (!Arrays.equals(now, seen[0])) {
              load.run();
              seen[0] = now;
              LOG.info("TLS files reloaded: " + files);
            }
          } catch (IOException | GeneralSecurityException | RuntimeException e) {
            LOG.log(
                Level.WARNING, "TLS files " + files + " not reloaded; keeping the last ones", e);
          }
        },
        periodMillis,
        periodMillis,
        TimeUnit.MILLISECONDS);
  }

  private static byte[] digest(List<Path> files) throws IOException {
    try {
      MessageDigest d = MessageDigest.getInstance("SHA-256");
      for (Path f : files) {
        d.update(Files.readAllBytes(f));
      }
      return d.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }
}
