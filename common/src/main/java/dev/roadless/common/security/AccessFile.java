package dev.roadless.common.security;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The parsed access file: identities, the SHA-256 of their bearer tokens (hashed at rest) and their
 * grants. One identity per line, fields separated by blanks, {@code #} starts a comment:
 *
 * <pre>
 * # identity          sha256(token), or - for mTLS only     grants: run=role ...
 * checkpoint-service  9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  *=operator
 * team-a-trainer      2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae  team-a-*=trainer
 * trainer-0           -                                      demo=trainer demo=operator
 * </pre>
 *
 * <p>A run pattern is an exact run id, a prefix ending in {@code *} ({@code team-a-*}) or {@code *}
 * (every run). Roles are {@code trainer}, {@code reader}, {@code operator}, {@code admin}; an
 * identity may hold several. A caller is the identity whose token hash matches its bearer token or,
 * without a token, the identity named by its client certificate's subject CN. The hash is {@code
 * sha256sum} of the token's UTF-8 bytes, in lower-case hex ({@code printf %s "$TOKEN" |
 * sha256sum}).
 */
public final class AccessFile {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}");
  private static final Pattern HASH = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern RUN = Pattern.compile("\\*|[a-z0-9][a-z0-9._-]{0,62}\\*?");

  /** One grant: a run pattern and a role. */
  public record Grant(String run, Role role) {
    /** Whether this grant covers {@code runId}. */
    public boolean covers(String runId) {
      if (run.endsWith("*")) {
        return runId.startsWith(run.substring(0, run.length() - 1));
      }
      return run.equals(runId);
    }
  }

  /** One identity: its name, the token hash (null for mTLS only) and its grants. */
  public record Identity(String name, String tokenSha256, List<Grant> grants) {
    /** The roles this identity holds on {@code runId}. */
    public Set<Role> rolesOn(String runId) {
      Set<Role> roles = EnumSet.noneOf(Role.class);
      for (Grant g : grants) {
        if (g.covers(runId)) {
          roles.add(g.role());
        }
      }
      return roles;
    }

    /** Whether it holds {@code role} on every run ({@code *}). */
    public boolean holdsEverywhere(Role role) {
      return grants.stream().anyMatch(g -> g.run().equals("*") && g.role() == role);
    }
  }

  private final Map<String, Identity> byName;
  private final Map<String, Identity> byTokenHash;

  private AccessFile(Map<String, Identity> byName, Map<String, Identity> byTokenHash) {
    this.byName = byName;
    this.byTokenHash = byTokenHash;
  }

  /** Parses the file's text; throws IllegalArgumentException naming the line that is wrong. */
  public static AccessFile parse(String text) {
    Map<String, Identity> byName = new LinkedHashMap<>();
    Map<String, Identity> byHash = new HashMap<>();
    String[] lines = text.split("\r?\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i];
      int hash = line.indexOf('#');
      String content = (hash >= 0 ? line.substring(0, hash) : line).strip();
      if (content.isEmpty()) {
        continue;
      }
      String where = "access file line " + (i + 1) + ": ";
      String[] f = content.split("\\s+");
      if (f.length < 3) {
        throw new IllegalArgumentException(
            where + "expected '<identity> <sha256-hex or -> <run>=<role> ...'");
      }
      if (!NAME.matcher(f[0]).matches()) {
        throw new IllegalArgumentException(where + "bad identity name '" + f[0] + "'");
      }
      if (byName.containsKey(f[0])) {
        throw new IllegalArgumentException(where + "identity '" + f[0] + "' listed twice");
      }
      String tokenHash = f[1].equals("-") ? null : f[1].toLowerCase(java.util.Locale.ROOT);
      if (tokenHash != null && !HASH.matcher(tokenHash).matches()) {
        throw new IllegalArgumentException(
            where + "the second field must be the token's SHA-256 in hex (64 digits) or -");
      }
      if (tokenHash != null && byHash.containsKey(tokenHash)) {
        throw new IllegalArgumentException(where + "two identities share one token hash");
      }
      List<Grant> grants = new ArrayList<>();
      for (int k = 2; k < f.length; k++) {
        int eq = f[k].lastIndexOf('=');
        if (eq <= 0 || !RUN.matcher(f[k].substring(0, eq)).matches()) {
          throw new IllegalArgumentException(
              where + "bad grant '" + f[k] + "' (expected run=role; run: an id, a prefix*, or *)");
        }
        try {
          grants.add(new Grant(f[k].substring(0, eq), Role.parse(f[k].substring(eq + 1))));
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(where + e.getMessage());
        }
      }
      Identity id = new Identity(f[0], tokenHash, List.copyOf(grants));
      byName.put(id.name(), id);
      if (tokenHash != null) {
        byHash.put(tokenHash, id);
      }
    }
    return new AccessFile(Map.copyOf(byName), Map.copyOf(byHash));
  }

  /** The identity whose token this is, or null. */
  public Identity byToken(String token) {
    return byTokenHash.get(sha256Hex(token));
  }

  /** The identity of this name (a certificate's CN), or null. */
  public Identity byName(String name) {
    return byName.get(name);
  }

  /** The number of identities. */
  public int size() {
    return byName.size();
  }

  /** Lower-case hex SHA-256 of the UTF-8 bytes of {@code token}: what the file stores. */
  public static String sha256Hex(String token) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }
}
