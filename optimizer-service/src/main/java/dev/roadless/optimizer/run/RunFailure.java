package dev.roadless.optimizer.run;

/**
 * Why a run is FAILED: the step whose application made its state non-finite, and the first
 * non-finite element found (tensor, flat index, state array).
 *
 * @param slot {@code z}, {@code x}, {@code exp_avg_sq} or {@code exp_avg}
 */
public record RunFailure(long step, String tensor, long element, String slot) {}
