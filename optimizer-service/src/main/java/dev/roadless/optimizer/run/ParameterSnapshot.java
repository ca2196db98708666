package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Sequence;
import java.util.List;

/**
 * Every tensor of one sequence at one step. Never mutated after it is published, so any number of
 * readers may stream it while training goes on.
 *
 * @param step completed steps when the values were taken
 * @param sequence which sequence the values are
 * @param names tensor names in run order
 * @param values one float32 array per tensor, row-major, in run order
 */
public record ParameterSnapshot(
    long step, Sequence sequence, List<String> names, float[][] values) {}
