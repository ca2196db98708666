package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shared-memory clean-up never follows a symbolic link (issue 17): a server on loopback starts
 * over a shared-memory directory holding planted links and foreign files, and afterwards every file
 * outside its own directories is still there, byte for byte. Real files throughout.
 */
class SharedMemoryLinksTest {
  @TempDir Path tmp;
  private Path shm;
  private Path victim;

  @BeforeEach
  void setUp() throws IOException {
    shm = Files.createDirectory(tmp.resolve("shm"));
    victim = Files.createDirectory(tmp.resolve("victim"));
    // Named like what a server makes, so that only the link check can save them.
    for (String name : List.of("old.0.1.seg", "probe", "precious.txt")) {
      Files.writeString(victim.resolve(name), "keep " + name);
    }
    Files.createDirectory(victim.resolve("nested"));
    Files.writeString(victim.resolve("nested/r.0.1.seg"), "keep nested");
  }

  @Test
  void start_linkNamedLikeADeadServersDirectory_targetUntouched() throws Exception {
    Path link = Files.createSymbolicLink(shm.resolve("roadless-optimizer-" + deadPid()), victim);
    try (Harness h = harness()) {
      assertVictimIntact();
      assertTrue(Files.isSymbolicLink(link), "the link itself is left too");
    }
    assertVictimIntact();
  }

  @Test
  void start_deadServersDirectoryWithLinksAndForeignFiles_removesOnlyItsOwnSegments()
      throws Exception {
    Path dead = Files.createDirectory(shm.resolve("roadless-optimizer-" + deadPid()));
    Files.writeString(dead.resolve("stale.0.1.seg"), "stale");
    Files.writeString(dead.resolve("probe"), "stale probe");
    Files.createSymbolicLink(dead.resolve("linked.0.2.seg"), victim.resolve("old.0.1.seg"));
    Files.createSymbolicLink(dead.resolve("probe.tmp"), victim.resolve("probe"));
    Files.createSymbolicLink(dead.resolve("dir.0.3.seg"), victim.resolve("nested"));
    Files.createDirectory(dead.resolve("sub.0.4.seg"));
    Files.writeString(dead.resolve("sub.0.4.seg/x.0.5.seg"), "inside a sub-directory");
    Files.writeString(dead.resolve("notes.txt"), "not a server's file");
    try (Harness h = harness()) {
      assertFalse(Files.exists(dead.resolve("stale.0.1.seg")), "its own stale segment goes");
      assertFalse(Files.exists(dead.resolve("probe")), "its own stale probe goes");
      assertEquals(
          Set.of("linked.0.2.seg", "probe.tmp", "dir.0.3.seg", "sub.0.4.seg", "notes.txt"),
          names(dead),
          "links, a sub-directory and foreign files stay");
      assertTrue(Files.exists(dead.resolve("sub.0.4.seg/x.0.5.seg")), "no recursion");
      assertVictimIntact();
    }
    assertVictimIntact();
  }

  @Test
  void attach_ownDirectoryNameTakenByALink_refusedAndNothingWrittenThere() throws Exception {
    Path own = shm.resolve("roadless-optimizer-" + ProcessHandle.current().pid());
    Files.createSymbolicLink(own, victim);
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      StatusRuntimeException e =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  h.blocking.attachSharedMemory(
                      AttachSharedMemoryRequest.newBuilder()
                          .setRunId("r")
                          .setReplica(0)
                          .setLocalityProof(ByteString.EMPTY)
                          .build()));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode(), e.toString());
      assertTrue(
          e.getStatus().getDescription().contains("not a directory of this user"), e.toString());
      assertVictimIntact();
    }
    assertVictimIntact();
    assertTrue(Files.isSymbolicLink(own));
  }

  @Test
  void shutdown_ownDirectory_removesOnlyWhatItMade() throws Exception {
    Path own;
    try (Harness h = harness()) {
      h.newRun("r", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      own =
          Path.of(
                  h.blocking
                      .attachSharedMemory(
                          AttachSharedMemoryRequest.newBuilder()
                              .setRunId("r")
                              .setReplica(0)
                              .build())
                      .getProbePath())
              .getParent();
      // Something else (the same user, by mistake) puts a link into the server's directory.
      Files.createSymbolicLink(own.resolve("planted.0.9.seg"), victim.resolve("old.0.1.seg"));
    }
    assertEquals(Set.of("planted.0.9.seg"), names(own), "the probe went, the link stayed");
    assertVictimIntact();
  }

  private Harness harness() throws Exception {
    return new Harness(null, 4 << 20, true, shm);
  }

  private void assertVictimIntact() throws IOException {
    for (String name : List.of("old.0.1.seg", "probe", "precious.txt")) {
      Path p = victim.resolve(name);
      assertTrue(Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS), name + " was deleted");
      assertEquals("keep " + name, Files.readString(p));
    }
    assertEquals("keep nested", Files.readString(victim.resolve("nested/r.0.1.seg")));
    assertEquals(Set.of("old.0.1.seg", "probe", "precious.txt", "nested"), names(victim));
  }

  private static Set<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
    }
  }

  private static long deadPid() {
    long pid = 4_000_000; // above Linux's pid_max ceiling (2^22): never alive
    while (ProcessHandle.of(pid).isPresent()) {
      pid++;
    }
    return pid;
  }
}
