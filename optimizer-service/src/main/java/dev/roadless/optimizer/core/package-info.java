/**
 * The Schedule-Free math on float32 arrays: no wire types, no I/O.
 *
 * <p>{@link dev.roadless.optimizer.core.ScheduleFreeOptimizer} is the public face: it owns per
 * tensor z, x and the base optimizer's moments, and per group a {@code Schedule} (ALGORITHM.md
 * section 2, shared by every variant). Each {@link dev.roadless.optimizer.core.Variant} is a small
 * {@code BaseUpdate} strategy that supplies the scheduled rate and a fused per-element {@code
 * Kernel}; {@code ChunkExecutor} runs the kernels over 64K-element chunks on a fixed set of
 * threads. Inputs are validated completely ({@code Inputs}) before anything changes.
 *
 * <p>Numerics follow golden/FORMAT.md section 2 (PyTorch's float32 op semantics: fused {@code
 * add_(alpha)}, the {@code lerp_} rule, rounded scalars) in the op order of the upstream reference
 * classes, which store x and z; y is derived as {@code beta*x + (1-beta)*z} in the same float32
 * form. The golden suite and a differential test against a deliberately simple implementation pin
 * this down.
 */
package dev.roadless.optimizer.core;
