package dev.roadless.optimizer.run;

/**
 * What became of one push.
 *
 * @param applied true when the push's step has been applied (false: SYNC, waiting for replicas)
 * @param step the step the push was computed at
 * @param appliedAsStep the step it was applied as (ASYNC may apply a stale push later)
 * @param currentStep the run's completed steps when this answer was made
 * @param duplicate true when this answers an earlier identical push and nothing new was applied
 */
public record PushResult(
    boolean applied, long step, long appliedAsStep, long currentStep, boolean duplicate) {

  PushResult asDuplicate(long currentStep) {
    return new PushResult(applied, step, appliedAsStep, currentStep, true);
  }
}
