package dev.roadless.deploy.demo;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Pauses and resumes real processes with SIGSTOP and SIGCONT: a paused service is a service that is
 * slow to come up, seen from every other process.
 */
final class Signals {
  private Signals() {}

  static void pause(List<ProcessHandle> processes) throws IOException, InterruptedException {
    send("-STOP", processes);
  }

  static void resume(List<ProcessHandle> processes) throws IOException, InterruptedException {
    send("-CONT", processes);
  }

  private static void send(String signal, List<ProcessHandle> processes)
      throws IOException, InterruptedException {
    if (processes.isEmpty()) {
      return;
    }
    List<String> cmd = new ArrayList<>(List.of("kill", signal));
    processes.forEach(p -> cmd.add(Long.toString(p.pid())));
    new ProcessBuilder(cmd).inheritIO().start().waitFor();
  }
}
