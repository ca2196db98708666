/**
 * Shared-memory segments for replicas on the optimizer server's host: one file per replica that
 * both processes map, holding a gradient region (written by the replica) and a parameters region
 * (written by the server). gRPC still carries every push and answer; only the tensors skip the
 * socket. The layout is language-neutral and documented on {@code AttachSharedMemoryResponse}.
 */
package dev.roadless.optimizer.shm;
