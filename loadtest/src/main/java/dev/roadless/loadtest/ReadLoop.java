package dev.roadless.loadtest;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.optimizer.v1.Sequence;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Read traffic beside training, at a fixed rate over the runs in turn: GetParameters at x (what an
 * evaluator or the checkpoint service reads) or GetRunStatus (what dashboards poll). Open loop like
 * the replicas': call n is meant to leave at {@code start + n / rate} and is timed from then.
 */
final class ReadLoop implements Runnable {
  private final String rpc;
  private final double rate;
  private final OptimizerClient client;
  private final List<String> runIds;
  private final Measurements measurements;
  private final AtomicBoolean stop;

  ReadLoop(
      String rpc,
      double rate,
      OptimizerClient client,
      List<String> runIds,
      Measurements measurements,
      AtomicBoolean stop) {
    this.rpc = rpc;
    this.rate = rate;
    this.client = client;
    this.runIds = runIds;
    this.measurements = measurements;
    this.stop = stop;
  }

  @Override
  public void run() {
    long start = System.nanoTime();
    double period = 1e9 / rate;
    for (long n = 0; !stop.get(); n++) {
      long intended = start + (long) (n * period);
      long left;
      while ((left = intended - System.nanoTime()) > 0 && !stop.get()) {
        LockSupport.parkNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(50)));
      }
      if (stop.get()) {
        return;
      }
      String runId = runIds.get((int) (n % runIds.size()));
      try {
        if (rpc.equals(Measurements.GET_PARAMETERS)) {
          client.parameters(runId, Sequence.SEQUENCE_EVAL, 0);
        } else {
          client.status(runId);
        }
        measurements.success(rpc, System.nanoTime() - intended);
      } catch (RuntimeException e) {
        measurements.failure(rpc, e);
      }
    }
  }
}
