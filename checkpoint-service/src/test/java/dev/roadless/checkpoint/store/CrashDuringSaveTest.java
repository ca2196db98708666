package dev.roadless.checkpoint.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A save killed mid-write: a child JVM commits a checkpoint whose 64 MiB file it writes in pieces;
 * once half of it is on disk it says so and blocks, and the test kills it with SIGKILL. The
 * checkpoint directory, reopened, holds the earlier checkpoint intact and no trace of the new one.
 */
class CrashDuringSaveTest {
  static final int MIB = 1 << 20;

  @TempDir Path dir;

  @Test
  void commit_killedMidWrite_previousCheckpointIntactAndNoPartialVisible() throws Exception {
    CheckpointStore store = new CheckpointStore(dir);
    store.commit(List.of(file(1, Integer.MAX_VALUE)), entries -> manifest("previous", entries));
    Manifest before = store.verified("previous");

    Process child =
        new ProcessBuilder(
                "java",
                "-cp",
                System.getProperty("java.class.path"),
                CrashDuringSaveTest.class.getName(),
                dir.toString())
            .redirectErrorStream(true)
            .start();
    try (BufferedReader out =
        new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = out.readLine()) != null && !line.equals("HALF WRITTEN")) {
        System.out.println("child: " + line);
      }
      assertEquals("HALF WRITTEN", line);
      // The partial file exists on disk, in staging, while the child is still alive.
      try (Stream<Path> staged = Files.walk(dir.resolve(".staging"))) {
        assertTrue(staged.anyMatch(p -> p.getFileName().toString().equals("model.safetensors")));
      }
      child.destroyForcibly(); // SIGKILL on Linux: no shutdown hooks, no finally blocks
      assertTrue(child.waitFor(30, TimeUnit.SECONDS));
    }
    assertEquals(137, child.exitValue());

    CheckpointStore reopened = new CheckpointStore(dir);
    assertEquals(List.of("previous"), reopened.list().stream().map(Manifest::name).toList());
    assertEquals(before, reopened.verified("previous"));
    assertFalse(reopened.find("crashed").isPresent());
    try (Stream<Path> staged = Files.list(dir.resolve(".staging"))) {
      assertEquals(0, staged.count());
    }
    // The name is free: the interrupted save can simply be repeated.
    assertTrue(
        reopened
            .commit(List.of(file(2, Integer.MAX_VALUE)), entries -> manifest("crashed", entries))
            .created());
  }

  @Test
  void commit_writerFails_nothingLeftAndCauseReported() throws Exception {
    CheckpointStore store = new CheckpointStore(dir);
    RoadlessException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RoadlessException.class,
            () ->
                store.commit(
                    List.of(
                        new CheckpointStore.StagedFile(
                            "model.safetensors",
                            "safetensors",
                            p -> {
                              Files.write(p, new byte[1000]);
                              throw new IOException("disk full (injected)");
                            })),
                    entries -> manifest("never", entries)));
    assertEquals(ErrorReason.ERROR_REASON_STORAGE_UNAVAILABLE, e.reason());
    assertTrue(e.getMessage().contains("disk full (injected)"), e.getMessage());
    assertTrue(store.list().isEmpty());
    try (Stream<Path> staged = Files.list(dir.resolve(".staging"))) {
      assertEquals(0, staged.count());
    }
  }

  /** The child: commits "crashed" and stops for good halfway through its data file. */
  public static void main(String[] args) throws Exception {
    CheckpointStore store = new CheckpointStore(Path.of(args[0]));
    store.commit(List.of(file(3, 32)), entries -> manifest("crashed", entries));
    System.out.println("the commit finished: the test should have killed this process");
  }

  /** A 64 MiB file of {@code value}; after {@code announceAtMib} MiB it announces and blocks. */
  static CheckpointStore.StagedFile file(int value, int announceAtMib) {
    return new CheckpointStore.StagedFile(
        "model.safetensors",
        "bytes",
        p -> {
          byte[] mib = new byte[MIB];
          java.util.Arrays.fill(mib, (byte) value);
          try (OutputStream out = Files.newOutputStream(p)) {
            for (int i = 0; i < 64; i++) {
              if (i == announceAtMib) {
                out.flush();
                System.out.println("HALF WRITTEN");
                System.out.flush();
                try {
                  Thread.sleep(Long.MAX_VALUE); // until SIGKILL
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                  throw new IOException(e);
                }
              }
              out.write(mib);
            }
          }
        });
  }

  static Manifest manifest(String name, List<Manifest.FileEntry> files) {
    return new Manifest(
        1,
        name,
        Manifest.EVAL,
        "run",
        5,
        "2024-01-01T00:00:00Z",
        "OPTIMIZER_VARIANT_ADAMW",
        null,
        null,
        null,
        null,
        null,
        files,
        List.of());
  }
}
