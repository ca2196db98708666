package dev.roadless.common.security;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * The access file as the server sees it now: read at start (a bad file stops the start with the
 * line that is wrong), then read again every few seconds and swapped in when its content changed.
 * Polling the content, not a file event, follows a Kubernetes Secret mount, whose files change by a
 * symlink swap. A file that becomes unreadable or invalid keeps the last good one in force and logs
 * why.
 */
public final class AccessControl implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(AccessControl.class.getName());
  private static final String BEARER = "Bearer ";

  private final Path file;
  private final ScheduledExecutorService poller;
  private volatile AccessFile current;
  private volatile byte[] lastContent;

  private AccessControl(Path file, AccessFile first, byte[] content, long pollMillis) {
    this.file = file;
    this.current = first;
    this.lastContent = content;
    if (file == null) {
      this.poller = null;
      return;
    }
    this.poller =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "roadless-access-file");
              t.setDaemon(true);
              return t;
            });
    poller.scheduleWithFixedDelay(this::reload, pollMillis, pollMillis, TimeUnit.MILLISECONDS);
  }

  /** Reads {@code file} now and polls it every {@code pollMillis}; throws on a bad file. */
  public static AccessControl fromFile(Path file, long pollMillis) throws IOException {
    byte[] content = Files.readAllBytes(file);
    AccessFile parsed;
    try {
      parsed = AccessFile.parse(new String(content, java.nio.charset.StandardCharsets.UTF_8));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    LOG.info("access file " + file + ": " + parsed.size() + " identities");
    return new AccessControl(file, parsed, content, pollMillis);
  }

  /** Fixed grants (tests). */
  public static AccessControl of(AccessFile access) {
    return new AccessControl(null, access, new byte[0], 0);
  }

  /** The access file in force. */
  public AccessFile current() {
    return current;
  }

  /** Reads the file again; swaps it in when its content changed and it parses. */
  public void reload() {
    try {
      byte[] content = Files.readAllBytes(file);
      if (Arrays.equals(content, lastContent)) {
        return;
      }
      AccessFile parsed =
          AccessFile.parse(new String(content, java.nio.charset.StandardCharsets.UTF_8));
      current = parsed;
      lastContent = content;
      LOG.info("access file " + file + " reloaded: " + parsed.size() + " identities");
    } catch (IOException | IllegalArgumentException e) {
      LOG.log(Level.WARNING, "access file " + file + " not reloaded, keeping the last good one", e);
    }
  }

  /**
   * The caller: the identity of the bearer token when there is an {@code authorization} header (an
   * unknown token is refused even with a certificate), else the identity named by the client
   * certificate's subject CN (an identity without grants when the file does not list it).
   *
   * @throws RoadlessException UNAUTHENTICATED when neither identifies the caller
   */
  public AccessFile.Identity authenticate(String authorization, SSLSession tls) {
    AccessFile access = current;
    if (authorization != null) {
      if (!authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
        throw unauthenticated("the authorization metadata must be 'Bearer <token>'");
      }
      AccessFile.Identity id = access.byToken(authorization.substring(BEARER.length()).strip());
      if (id == null) {
        throw unauthenticated("the bearer token is not valid here");
      }
      return id;
    }
    String cn = certificateName(tls);
    if (cn != null) {
      AccessFile.Identity id = access.byName(cn);
      return id != null ? id : new AccessFile.Identity(cn, null, List.of());
    }
    throw unauthenticated(
        "no credentials: send 'authorization: Bearer <token>' metadata or a client certificate");
  }

  /** The subject CN of the verified client certificate, or null when there is none. */
  static String certificateName(SSLSession tls) {
    if (tls == null) {
      return null;
    }
    Certificate[] chain;
    try {
      chain = tls.getPeerCertificates();
    } catch (SSLPeerUnverifiedException e) {
      return null;
    }
    if (chain.length == 0 || !(chain[0] instanceof X509Certificate leaf)) {
      return null;
    }
    try {
      for (Rdn rdn : new LdapName(leaf.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
    } catch (InvalidNameException e) {
      return null;
    }
    return null;
  }

  private static RoadlessException unauthenticated(String message) {
    return new RoadlessException(ErrorReason.ERROR_REASON_UNAUTHENTICATED, message);
  }

  @Override
  public void close() {
    if (poller != null) {
      poller.shutdownNow();
    }
  }
}
