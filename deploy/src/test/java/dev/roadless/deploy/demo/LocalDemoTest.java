package dev.roadless.deploy.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo end to end, as a user starts it: real service processes on loopback, a few training
 * steps, the report and the plot. Start-up order is the subject: the demo must wait for every
 * service's readiness and for the run, however slow a service is, and say clearly when one does not
 * come up in time.
 */
class LocalDemoTest {
  private static final String[] SMALL = {"--steps=20", "--eval-every=10", "--warmup-steps=5"};
  private static final Duration RUN_LIMIT = Duration.ofMinutes(5);

  @Test
  void demo_threeRunsInARow_eachCompletesWithReportAndPlot(@TempDir Path tmp) throws Exception {
    for (int i = 0; i < 3; i++) {
      try (DemoProcess demo = DemoProcess.start(tmp.resolve("run-" + i), SMALL)) {
        assertEquals(0, demo.awaitExit(RUN_LIMIT), "run " + i + ":\n" + demo.stderr());
        assertCompleted(demo);
      }
    }
  }

  @Test
  void demo_twoOptimizerShards_trainsShardedAndCompletes(@TempDir Path tmp) throws Exception {
    try (DemoProcess demo =
        DemoProcess.start(
            tmp, "--steps=20", "--eval-every=20", "--warmup-steps=5", "--optimizer-shards=2")) {
      assertEquals(0, demo.awaitExit(RUN_LIMIT), demo.stderr());
      assertCompleted(demo);
      assertTrue(Files.exists(demo.out().resolve("logs").resolve("optimizer-1.log")));
    }
  }

  @Test
  void demo_trainersPausedAfterListening_waitsForTheRunAndCompletes(@TempDir Path tmp)
      throws Exception {
    try (DemoProcess demo = DemoProcess.start(tmp, SMALL)) {
      // Pause both replicas as soon as they listen: before they have loaded the model and created
      // the run (the window the demo used to race into with NOT_FOUND).
      List<ProcessHandle> trainers = pauseTrainersOnceListening(demo, 2);
      demo.awaitOutput("Waiting for the trainers", RUN_LIMIT);
      // The slowness itself: the trainers stay paused this long while the demo waits.
      TimeUnit.SECONDS.sleep(5);
      assertTrue(demo.process().isAlive(), "the demo gave up on slow trainers:\n" + demo.stderr());
      assertFalse(demo.stdout().contains("All services ready"));
      Signals.resume(trainers);
      assertEquals(0, demo.awaitExit(RUN_LIMIT), demo.stderr());
      assertCompleted(demo);
    }
  }

  @Test
  void demo_trainerNeverReady_failsAtTheDeadlineNamingTheTrainerAndItsLog(@TempDir Path tmp)
      throws Exception {
    try (DemoProcess demo = DemoProcess.start(tmp, "--steps=20", "--startup-timeout-seconds=20")) {
      List<ProcessHandle> trainers = pauseTrainersOnceListening(demo, 2);
      demo.awaitOutput("SERVING within 20 s", Duration.ofSeconds(120));
      Signals.resume(trainers); // let them drain on the demo's SIGTERM
      assertEquals(1, demo.awaitExit(RUN_LIMIT));
      String message = demo.stderr();
      assertTrue(message.contains("trainer-0"), message);
      assertTrue(message.contains("within 20 s"), message);
      assertTrue(message.contains(demo.out().resolve("logs").resolve("trainer-0.log").toString()));
    }
  }

  private static List<ProcessHandle> pauseTrainersOnceListening(DemoProcess demo, int replicas)
      throws Exception {
    Path logs = demo.out().resolve("logs");
    long deadline = System.nanoTime() + RUN_LIMIT.toNanos();
    while (true) {
      boolean listening = true;
      for (int r = 0; r < replicas; r++) {
        Path port = logs.resolve("trainer-" + r + ".port");
        listening &= Files.exists(port) && !Files.readString(port).isBlank();
      }
      List<ProcessHandle> trainers = demo.trainers();
      if (listening && trainers.size() == replicas) {
        Signals.pause(trainers);
        return trainers;
      }
      assertTrue(demo.process().isAlive() && System.nanoTime() < deadline, demo.stderr());
      TimeUnit.MILLISECONDS.sleep(20); // port files are the only sign; nothing to latch on
    }
  }

  private static void assertCompleted(DemoProcess demo) throws Exception {
    String out = demo.stdout();
    assertTrue(out.contains("All services ready"), out);
    assertTrue(out.contains("precise BN"), out);
    assertTrue(out.contains("step    20"), out);
    Path plot = demo.out().resolve("demo.html");
    assertTrue(Files.readString(plot).contains("<svg"), plot.toString());
  }
}
