package dev.roadless.common.security;

import static dev.roadless.common.security.Role.ADMIN;
import static dev.roadless.common.security.Role.OPERATOR;
import static dev.roadless.common.security.Role.READER;
import static dev.roadless.common.security.Role.TRAINER;

import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/**
 * Who may call what: the one table of every RPC of {@code roadless.optimizer.v1}, {@code
 * roadless.trainer.v1} and {@code roadless.checkpoint.v1} (health and reflection stay open). A call
 * is allowed when the caller holds one of the row's roles on the call's run; {@code admin} on a run
 * allows every call on it, and {@code admin} on {@code *} every server-wide call.
 *
 * <p>The run is the request's {@code run_id} (also inside a stream's header message), checked on
 * every inbound message; where a request names no run, the service says which run it is about (a
 * checkpoint's run, a trainer's run) or the call is server-wide. {@link Scope#LIST} calls are open
 * to every identity and answer only the runs the caller holds a row role on.
 */
public final class RpcPolicy {
  /** How a row finds its run. */
  public enum Scope {
    /** The request's run; server-wide (admin on {@code *}) when none can be found. */
    RUN,
    /** A listing: answers filtered to the runs the caller may see; a named run is checked. */
    LIST
  }

  /**
   * One row.
   *
   * @param roles the roles that allow the call
   * @param scope how the run is found
   * @param mutating whether the call changes state (audited when it succeeds, too)
   * @param trainRoles for GetParameters: the roles that may read more than x (y, z)
   */
  public record Rule(Set<Role> roles, Scope scope, boolean mutating, Set<Role> trainRoles) {
    /** The roles that allow this call for this request. */
    public Set<Role> rolesFor(boolean trainSequence) {
      return trainSequence && trainRoles != null ? trainRoles : roles;
    }
  }

  private static final String OPT = "roadless.optimizer.v1.OptimizerService/";
  private static final String TRN = "roadless.trainer.v1.TrainerService/";
  private static final String CKP = "roadless.checkpoint.v1.CheckpointService/";

  private static final Set<Role> PUSH = EnumSet.of(TRAINER, ADMIN);
  private static final Set<Role> READ = EnumSet.of(TRAINER, READER, OPERATOR, ADMIN);
  private static final Set<Role> VIEW = EnumSet.of(READER, OPERATOR, ADMIN);
  private static final Set<Role> OPERATE = EnumSet.of(OPERATOR, ADMIN);
  private static final Set<Role> SETUP = EnumSet.of(TRAINER, OPERATOR, ADMIN);

  private static final Map<String, Rule> TABLE =
      Map.ofEntries(
          // roadless.optimizer.v1
          row(OPT + "CreateRun", OPERATE, true),
          row(OPT + "UploadInitialValues", SETUP, true),
          row(OPT + "PushGradients", PUSH, true),
          row(OPT + "Train", PUSH, true),
          row(OPT + "AttachSharedMemory", PUSH, true),
          Map.entry(OPT + "GetParameters", new Rule(READ, Scope.RUN, false, PUSH)),
          row(OPT + "GetRunStatus", READ, false),
          Map.entry(OPT + "ListRuns", new Rule(READ, Scope.LIST, false, null)),
          row(OPT + "UpdateHyperparameters", OPERATE, true),
          row(OPT + "ExportState", OPERATE, false),
          row(OPT + "ImportState", OPERATE, true),
          row(OPT + "DeleteRun", OPERATE, true),
          row(OPT + "RollbackRun", OPERATE, true),
          // roadless.trainer.v1: the run is the request's, or the trainer's current run
          row(TRN + "Start", OPERATE, true),
          row(TRN + "Stop", OPERATE, true),
          row(TRN + "GetStatus", READ, false),
          row(TRN + "ComputeBatchNormStatistics", OPERATE, false),
          row(TRN + "Evaluate", VIEW, false),
          // roadless.checkpoint.v1: by name, the run is the checkpoint's (and for RestoreState
          // also the target run)
          row(CKP + "SaveCheckpoint", OPERATE, true),
          row(CKP + "SaveStateCheckpoint", OPERATE, true),
          row(CKP + "RestoreState", OPERATE, true),
          Map.entry(CKP + "ListCheckpoints", new Rule(VIEW, Scope.LIST, false, null)),
          row(CKP + "GetCheckpoint", VIEW, false),
          row(CKP + "DownloadCheckpoint", VIEW, false),
          row(CKP + "DeleteCheckpoint", OPERATE, true));

  private RpcPolicy() {}

  private static Map.Entry<String, Rule> row(String method, Set<Role> roles, boolean mutating) {
    return Map.entry(method, new Rule(roles, Scope.RUN, mutating, null));
  }

  /**
   * The row of a full method name ({@code roadless.optimizer.v1.OptimizerService/Train}), or null.
   */
  public static Rule rule(String fullMethodName) {
    return TABLE.get(fullMethodName);
  }

  /** Every row, for documentation and tests. */
  public static Map<String, Rule> table() {
    return TABLE;
  }
}
