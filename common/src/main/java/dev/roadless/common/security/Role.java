package dev.roadless.common.security;

import java.util.Locale;

/**
 * What a grant lets an identity do on a run. Roles do not nest: {@link RpcPolicy} lists, for every
 * RPC, the roles that allow it.
 *
 * <ul>
 *   <li>{@code trainer}: push gradients and read its run's parameters (y and x) and status;
 *   <li>{@code reader}: status, parameters at x, list and download checkpoints;
 *   <li>{@code operator}: what a reader may, and create runs, update hyperparameters, export and
 *       import state, save, restore and delete checkpoints, delete and roll back runs, start and
 *       stop trainers;
 *   <li>{@code admin}: everything, including server-wide calls (an unfiltered ListRuns).
 * </ul>
 */
public enum Role {
  TRAINER,
  READER,
  OPERATOR,
  ADMIN;

  /** The role's name in the access file: lower case. */
  public String fileName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code trainer|reader|operator|admin}; throws IllegalArgumentException otherwise. */
  public static Role parse(String s) {
    for (Role r : values()) {
      if (r.fileName().equals(s)) {
        return r;
      }
    }
    throw new IllegalArgumentException(
        "unknown role '" + s + "' (expected trainer, reader, operator or admin)");
  }
}
