package dev.roadless.optimizer.core;

/**
 * A group's schedule scalars, read consistently between steps.
 *
 * @param k completed steps
 * @param lrK the scheduled lr used by the last step ({@code scheduled_lr}); 0 before the first
 * @param lrMax the largest scheduled lr so far (starts at -1, or 0 for the wrappers)
 * @param weightSum the sum of the averaging weights so far
 * @param ck the averaging coefficient of the last step ({@code ckp1}); 0 before the first
 * @param lr the live learning rate that the next step will schedule
 * @param yBeta the beta that formed the current y (NaN before the first step)
 */
public record GroupStatus(
    long k, double lrK, double lrMax, double weightSum, double ck, double lr, double yBeta) {}
