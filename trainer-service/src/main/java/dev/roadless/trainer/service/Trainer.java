package dev.roadless.trainer.service;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerState;
import dev.roadless.proto.trainer.v1.TrainerStatus;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.DatasetRoots;
import dev.roadless.trainer.data.Sharding;
import dev.roadless.trainer.model.GradientResult;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * One trainer replica: loads the model and data for a {@link StartRequest} and runs the training
 * loop on its own thread: compute the mean gradient of its slice at y_k, push it, receive y_{k+1}.
 * Survives optimizer restarts (it waits and resumes at the server's step). Thread-safe.
 */
public final class Trainer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Trainer.class.getName());

  private final OptimizerRun client;
  private final DatasetRoots datasetRoots;
  private TrainingJob job;
  private Thread loop;
  private volatile boolean stopRequested;
  private volatile LastRead lastRead;
  private volatile TrainerStatus status =
      TrainerStatus.newBuilder().setState(TrainerState.TRAINER_STATE_IDLE).build();

  /**
   * A trainer that reads only the bundled digits.
   *
   * @param client the optimizer client; the caller owns its channel
   */
  public Trainer(OptimizerClient client) {
    this(client, DatasetRoots.none());
  }

  /**
   * @param client the optimizer client; the caller owns its channel
   * @param datasetRoots where Start may open dataset files (the bundled digits need none)
   */
  public Trainer(OptimizerClient client, DatasetRoots datasetRoots) {
    this(List.of(client), datasetRoots);
  }

  /**
   * A trainer of runs sharded over the optimizer servers {@code shards} (shard order; one: not
   * sharded): pushes go to every shard, y and x are assembled whole ({@code ShardedSession}).
   *
   * @param shards one client per optimizer shard; the caller owns their channels
   */
  public Trainer(List<OptimizerClient> shards, DatasetRoots datasetRoots) {
    this.client = OptimizerRun.of(shards);
    this.datasetRoots = datasetRoots;
  }

  /** Starts training in the background; false if it already trains this exact configuration. */
  public synchronized boolean start(StartRequest request) {
    if (loop != null && loop.isAlive()) {
      if (job.request().equals(request)) {
        return false;
      }
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_TRAINER_BUSY,
          "the trainer is training run '" + job.request().getRunId() + "'; stop it first");
    }
    TrainingJob next =
        job != null && job.request().equals(request) ? job : TrainingJob.of(request, datasetRoots);
    // Create (or find) the run now, so a conflicting spec is the answer to Start itself.
    client.createRun(request.getRunId(), next.runSpec());
    job = next;
    stopRequested = false;
    update(TrainerState.TRAINER_STATE_STARTING, null);
    loop = new Thread(() -> run(next), "roadless-trainer-" + request.getReplica());
    loop.setDaemon(true);
    loop.start();
    return true;
  }

  /** Stops training; with {@code drain} the step in flight is pushed first. */
  public boolean stop(boolean drain, long timeoutMillis) throws InterruptedException {
    Thread t;
    synchronized (this) {
      t = loop;
      if (t == null || !t.isAlive()) {
        return false;
      }
      stopRequested = true;
      update(TrainerState.TRAINER_STATE_STOPPING, null);
    }
    if (!drain) {
      t.interrupt();
    }
    t.join(timeoutMillis);
    return true;
  }

  public TrainerStatus status() {
    return status;
  }

  /** The loaded configuration, or a refusal if the trainer was never started. */
  synchronized TrainingJob job() {
    if (job == null) {
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_TRAINER_NOT_CONFIGURED, "the trainer was never started");
    }
    return job;
  }

  /** The parameters read last (read-only: every consumer copies them into its model). */
  private record LastRead(String runId, Sequence sequence, Parameters values) {}

  /** The run's parameters of a sequence, waiting for {@code minStep}. */
  Parameters parameters(String runId, Sequence sequence, long minStep) {
    TrainingJob j = job();
    if (!j.request().getRunId().equals(runId)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_RUN_NOT_FOUND,
              "this trainer trains run '" + j.request().getRunId() + "', not '" + runId + "'")
          .with("run_id", runId)
          .build();
    }
    // One eval checkpoint asks this replica for statistics and then for two evaluations, all at
    // the same step k (min_step = k): the parameters read for the first serve the others, so x
    // crosses the network once per replica. A step's parameters never change; a cheap status call
    // proves the run is still at that step.
    LastRead last = lastRead;
    if (last != null
        && minStep > 0
        && last.values().step() == minStep
        && last.runId().equals(runId)
        && last.sequence() == sequence
        && client.status(runId).getStep() == minStep) {
      return last.values();
    }
    Parameters p = client.parameters(runId, sequence, minStep);
    lastRead = new LastRead(runId, sequence, p);
    return p;
  }

  private void run(TrainingJob j) {
    StartRequest r = j.request();
    List<String> names = j.tensorNames();
    OptimizerRun.Session session = null;
    try {
      if (r.getReplica() == 0 && !client.status(r.getRunId()).getInitialized()) {
        Map<String, float[]> init = j.model().parameters();
        client.uploadInitialValues(
            r.getRunId(), names, names.stream().map(init::get).toArray(float[][]::new));
      }
      session = client.session(r.getRunId(), r.getReplica());
      Parameters y = awaitInitialValues(session);
      Sharding sharding =
          new Sharding(r.getDataSeed(), j.train().size(), r.getGlobalBatchSize(), r.getReplicas());
      int every = r.getProgressEverySteps() == 0 ? 100 : r.getProgressEverySteps();
      update(TrainerState.TRAINER_STATE_TRAINING, null);
      long windowStart = System.nanoTime();
      long windowExamples = 0;
      double loss = Double.NaN;
      while (!stopRequested && (r.getMaxSteps() == 0 || y.step() < r.getMaxSteps())) {
        Map<String, float[]> weights = new LinkedHashMap<>();
        for (int t = 0; t < names.size(); t++) {
          weights.put(names.get(t), y.get(names.get(t)));
        }
        Batch batch = j.train().batch(sharding.slice(y.step(), r.getReplica()));
        GradientResult g;
        synchronized (j.model()) { // see TrainingJob.modelSnapshot
          j.model().setParameters(weights);
          g = j.model().computeGradient(batch.inputs(), batch.labels(), batch.size());
        }
        loss = g.loss();
        float[][] gradient = names.stream().map(g.gradients()::get).toArray(float[][]::new);
        long pushed = y.step();
        try {
          y = session.next(y, gradient);
        } catch (StatusRuntimeException e) {
          if (e.getStatus().getCode() != Status.Code.UNAVAILABLE || stopRequested) {
            throw e;
          }
          // The client's retries ran out: the optimizer is down for longer. Wait, then resume
          // at whatever step it comes back with.
          update(TrainerState.TRAINER_STATE_WAITING, e);
          y = awaitOptimizer(session);
          update(TrainerState.TRAINER_STATE_TRAINING, null);
          continue;
        }
        windowExamples += batch.size();
        if (y.step() % every == 0 || y.step() == r.getMaxSteps()) {
          double seconds = (System.nanoTime() - windowStart) / 1e9;
          double lrK = client.status(r.getRunId()).getGroups(0).getLrK();
          progress(r, pushed, loss, windowExamples / seconds, lrK);
          windowStart = System.nanoTime();
          windowExamples = 0;
        }
        status = status.toBuilder().setStep(y.step()).setLoss(loss).build();
      }
      update(TrainerState.TRAINER_STATE_STOPPED, null);
    } catch (StatusRuntimeException e) {
      if (stopRequested && e.getStatus().getCode() == Status.Code.CANCELLED) {
        update(TrainerState.TRAINER_STATE_STOPPED, null);
      } else {
        LOG.severe("replica " + r.getReplica() + " failed: " + e.getStatus());
        update(TrainerState.TRAINER_STATE_FAILED, e);
      }
    } catch (RuntimeException e) {
      LOG.severe("replica " + r.getReplica() + " failed: " + e);
      update(TrainerState.TRAINER_STATE_FAILED, e);
    } finally {
      if (session != null) {
        session.close();
      }
    }
  }

  /** Retries {@code current()} with backoff until the optimizer answers or a stop is asked. */
  private Parameters awaitOptimizer(OptimizerRun.Session session) {
    long backoff = 1000;
    while (true) {
      try {
        return session.current();
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE || stopRequested) {
          throw e;
        }
        sleep(backoff);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  }

  private static void sleep(long millis) {
    try {
      TimeUnit.MILLISECONDS.sleep(millis);
    } catch (InterruptedException ie) {
      Thread.currentThread().interrupt();
      throw Status.CANCELLED.withCause(ie).asRuntimeException();
    }
  }

  /** Replica 0 may still be uploading: wait for the initial values, bounded. */
  private Parameters awaitInitialValues(OptimizerRun.Session session) {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
    long backoff = 50;
    while (true) {
      try {
        return session.current();
      } catch (StatusRuntimeException e) {
        boolean missing = "INITIAL_VALUES_MISSING".equals(OptimizerClient.reason(e));
        if (!missing || System.nanoTime() > deadline || stopRequested) {
          throw e;
        }
        sleep(backoff);
        backoff = Math.min(2000, backoff * 2);
      }
    }
  }

  private void progress(
      StartRequest r, long step, double loss, double examplesPerSecond, double lrK) {
    status = status.toBuilder().setExamplesPerSecond(examplesPerSecond).setLrK(lrK).build();
    LOG.info(
        String.format(
            "run=%s replica=%d step=%d loss=%.4f examples_per_s=%.0f lr_k=%.6g",
            r.getRunId(), r.getReplica(), step, loss, examplesPerSecond, lrK));
  }

  private synchronized void update(TrainerState state, Throwable error) {
    TrainerStatus.Builder b = status.toBuilder().setState(state);
    if (job != null) {
      b.setRunId(job.request().getRunId())
          .setReplica(job.request().getReplica())
          .setReplicas(job.request().getReplicas());
    }
    if (error != null) {
      String reason = OptimizerClient.reason(error);
      ErrorReason r = ErrorReason.ERROR_REASON_INTERNAL;
      if (error instanceof RoadlessException re) {
        r = re.reason();
      } else if (!reason.isEmpty()) {
        try {
          r = ErrorReason.valueOf("ERROR_REASON_" + reason);
        } catch (IllegalArgumentException ignored) {
          r = ErrorReason.ERROR_REASON_INTERNAL;
        }
      } else if (error instanceof StatusRuntimeException sre
          && sre.getStatus().getCode() == Status.Code.UNAVAILABLE) {
        r = ErrorReason.ERROR_REASON_OPTIMIZER_UNAVAILABLE;
      }
      b.setLastErrorReason(r).setLastErrorMessage(String.valueOf(error.getMessage()));
    } else {
      b.clearLastErrorReason().clearLastErrorMessage();
    }
    status = b.build();
  }

  @Override
  public void close() throws InterruptedException {
    stop(false, 10_000);
  }
}
