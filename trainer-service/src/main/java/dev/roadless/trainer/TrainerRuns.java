package dev.roadless.trainer;

import dev.roadless.common.security.Authorization;
import dev.roadless.trainer.service.Trainer;
import java.util.List;

/**
 * Which run a trainer call is about, for authorization: Stop and GetStatus name no run, so they are
 * about the run this trainer trains; an idle trainer's are server-wide (admin on {@code *}). Start,
 * ComputeBatchNormStatistics and Evaluate name their run.
 */
final class TrainerRuns {
  private static final String SERVICE = "roadless.trainer.v1.TrainerService/";

  private TrainerRuns() {}

  static Authorization.Builder resolvers(Authorization.Builder auth, Trainer trainer) {
    Authorization.RunResolver ownRun =
        request -> {
          String run = trainer.status().getRunId();
          return run.isEmpty() ? List.of() : List.of(run);
        };
    return auth.resolver(SERVICE + "Stop", ownRun).resolver(SERVICE + "GetStatus", ownRun);
  }
}
