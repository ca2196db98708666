package dev.roadless.common.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The access file's format, grants by pattern, and authentication by token. */
class AccessFileTest {
  private static final String TEAM = "s3cret-team-a";
  private static final String FILE =
      "# comment\n"
          + "team-a "
          + AccessFile.sha256Hex(TEAM)
          + " team-a-*=operator exact-run=reader # trailing comment\n"
          + "\n"
          + "ckpt - *=operator\n";

  @Test
  void parse_grantsByExactPrefixAndStar() {
    AccessFile f = AccessFile.parse(FILE);
    AccessFile.Identity a = f.byToken(TEAM);
    assertEquals("team-a", a.name());
    assertEquals(Set.of(Role.OPERATOR), a.rolesOn("team-a-7"));
    assertEquals(Set.of(Role.READER), a.rolesOn("exact-run"));
    assertEquals(Set.of(), a.rolesOn("exact-run-2"));
    assertEquals(Set.of(), a.rolesOn("team-b-1"));
    assertEquals(Set.of(Role.OPERATOR), f.byName("ckpt").rolesOn("anything"));
    assertNull(f.byToken("wrong"));
    assertNull(f.byName("ckpt").tokenSha256());
  }

  @Test
  void parse_badLines_refusedNamingTheLine() {
    String[] bad = {
      "x", // too few fields
      "a abc *=admin", // not a hash
      "a - *=root", // unknown role
      "a - Team=admin", // bad run pattern
      "a - *=admin\na - *=reader", // listed twice
    };
    for (String text : bad) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> AccessFile.parse(text), text);
      assertTrue(e.getMessage().startsWith("access file line "), e.getMessage());
    }
  }

  @Test
  void authenticate_noCredentialsOrUnknownToken_unauthenticated() {
    AccessControl access = AccessControl.of(AccessFile.parse(FILE));
    assertEquals("team-a", access.authenticate("Bearer " + TEAM, null).name());
    for (String header : new String[] {null, "Bearer nope", "Basic abc"}) {
      RoadlessException e =
          assertThrows(RoadlessException.class, () -> access.authenticate(header, null));
      assertEquals(ErrorReason.ERROR_REASON_UNAUTHENTICATED, e.reason());
    }
  }
}
