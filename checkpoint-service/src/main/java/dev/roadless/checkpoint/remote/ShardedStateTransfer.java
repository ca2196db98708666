package dev.roadless.checkpoint.remote;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.shard.ShardCalls;
import dev.roadless.optimizer.shard.ShardedState;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.StateHeader;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.function.IntFunction;
import java.util.logging.Logger;

/**
 * The state of a run sharded over S optimizer servers ({@code dev.roadless.optimizer.shard}) as one
 * state file: export gathers every shard's ExportState, all from one step, into the state one
 * server would hold ({@link ShardedState#gather}); import cuts a state file, of a sharded run or of
 * an unsharded one, into this deployment's S shards ({@link ShardedState#split}) and imports each
 * part on its shard. The shards' exports run in parallel into scratch files next to the store,
 * removed afterwards.
 */
public final class ShardedStateTransfer implements StateTransfer {
  private static final Logger LOG = Logger.getLogger(ShardedStateTransfer.class.getName());

  /** Exports tried before giving up on a run that keeps moving between the shards' exports. */
  static final int MAX_ATTEMPTS = 3;

  private final List<OptimizerStateClient> shards;
  private final List<String> targets;
  private final Path scratch;
  private final ExecutorService executor;

  /**
   * @param shards one client per shard, in shard order
   * @param targets the shards' addresses, for messages
   * @param scratch a directory for the shards' parts (on the store's file system: states are large)
   */
  public ShardedStateTransfer(
      List<OptimizerStateClient> shards,
      List<String> targets,
      Path scratch,
      ExecutorService executor) {
    this.shards = List.copyOf(shards);
    this.targets = List.copyOf(targets);
    this.scratch = scratch;
    this.executor = executor;
  }

  @Override
  public StateHeader export(String runId, Path file) {
    List<Long> steps = List.of();
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      List<Path> parts = parts();
      try {
        onEveryShard(s -> shards.get(s).export(runId, parts.get(s)));
        return gather(parts, file);
      } catch (ShardedState.StepsDiffer e) {
        steps = e.steps();
        LOG.info("run " + runId + ": shards exported steps " + steps + "; exporting again");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } finally {
        delete(parts);
      }
    }
    throw RoadlessException.of(
            ErrorReason.ERROR_REASON_CHECKPOINT_STEP_MOVED,
            "run '"
                + runId
                + "' kept moving while its "
                + shards.size()
                + " shards were exported (steps "
                + steps
                + "); stop training, then save again")
        .with("run_id", runId)
        .build();
  }

  @Override
  public ImportStateResponse importState(Path file, String runId) {
    List<Path> parts = parts();
    try {
      try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
        List<OutputStream> outs = new ArrayList<>();
        try {
          List<StateWriter> writers = new ArrayList<>();
          for (Path p : parts) {
            OutputStream out = new BufferedOutputStream(Files.newOutputStream(p), 1 << 16);
            outs.add(out);
            writers.add(StateCodec.writer(out));
          }
          ShardedState.split(StateCodec.reader(in, Files.size(file)), writers);
        } finally {
          for (OutputStream out : outs) {
            out.close();
          }
        }
      }
      List<ImportStateResponse> answers =
          onEveryShard(s -> shards.get(s).importState(parts.get(s), runId));
      boolean created = answers.stream().anyMatch(ImportStateResponse::getCreated);
      return answers.get(0).toBuilder().setCreated(created).build();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      delete(parts);
    }
  }

  private static StateHeader gather(List<Path> parts, Path file) throws IOException {
    List<InputStream> ins = new ArrayList<>();
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
      List<StateReader> readers = new ArrayList<>();
      for (Path p : parts) {
        InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16);
        ins.add(in);
        readers.add(StateCodec.reader(in, Files.size(p)));
      }
      return ShardedState.gather(readers, StateCodec.writer(out));
    } finally {
      for (InputStream in : ins) {
        in.close();
      }
    }
  }

  private List<Path> parts() {
    try {
      Files.createDirectories(scratch);
      List<Path> parts = new ArrayList<>();
      for (int s = 0; s < shards.size(); s++) {
        parts.add(Files.createTempFile(scratch, "shard-" + s + "-", ".binpb"));
      }
      return parts;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void delete(List<Path> parts) {
    for (Path p : parts) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        LOG.warning("cannot remove " + p + ": " + e);
      }
    }
  }

  /** Runs {@code call} on every shard in parallel, each failure mapped with its shard's target. */
  private <T> List<T> onEveryShard(IntFunction<T> call) {
    return ShardCalls.onEvery(
        shards.size(),
        shard -> Upstream.optimizer(targets.get(shard), () -> call.apply(shard)),
        executor);
  }
}
