"""One server's side of a replica's pushes: its Train stream and its shared-memory segment. An
unsharded optimizer has one lane; a sharded one a lane per shard, each with its own client."""

import grpc
import numpy as np

from roadless import errors, shm
from roadless._tensors import FLOAT32, chunks
from roadless.optimizer.v1 import optimizer_service_pb2 as pb


# How many times one push is sent when the server answers PUSH_VOIDED each time.
MAX_VOIDED = 5


class Lane:
    """Pushes ``names`` (flat float32 arrays of ``sizes``) of replica ``replica`` to ``client``'s
    run ``run_id``. Not thread-safe: one thread per lane at a time."""

    def __init__(self, client, run_id, replica, dtype, names, sizes):
        self.client = client
        self.run_id = run_id
        self.replica = replica
        self.dtype = dtype
        self.names = list(names)
        self.sizes = list(sizes)
        self.total = sum(self.sizes)
        self.stream = None
        self.segment = None

    def push(self, step, gradient, into):
        """One push (UNAVAILABLE retried for the client's retry_for); returns the answer's
        TrainStepHeader after writing y's values into ``into`` (name -> flat float32 array)."""
        return self.client.call(lambda: self.attempt(step, gradient, into))

    def attempt(self, step, gradient, into):
        """One push; when the server answers PUSH_VOIDED (the other replica's push of the step
        was refused after ours was summed with it: the state is unchanged) the same gradient is
        pushed again on a new stream, up to MAX_VOIDED times in all."""
        for sent in range(1, MAX_VOIDED + 1):
            try:
                return self._attempt_once(step, gradient, into)
            except grpc.RpcError as e:
                err = errors.from_rpc_error(e)
                if err.reason != "PUSH_VOIDED" or sent == MAX_VOIDED:
                    raise err from None

    def _attempt_once(self, step, gradient, into):
        if self.stream is None or self.stream.broken:
            self.stream = self.client.open_train()
            self.segment = self._attach()
        header = pb.GradientHeader(
            run_id=self.run_id, replica=self.replica, step=step, dtype=self.dtype
        )
        if self.segment is not None:
            try:
                return self._push_segment(header, gradient, into)
            except errors.SharedMemoryUnknown:
                self.stream.close()
                self.stream = self.client.open_train()
                self.segment = self._attach()
                if self.segment is not None:
                    return self._push_segment(header, gradient, into)
        return self.stream.step(
            self._chunk_requests(header, gradient), into, self.client.options.wait_deadline
        )

    def _chunk_requests(self, header, gradient):
        yield pb.TrainRequest(header=header)
        for c in chunks(self.names, gradient, self.dtype, self.client.options.chunk_bytes):
            yield pb.TrainRequest(chunk=c)
        yield pb.TrainRequest(commit=pb.StreamCommit(total_elements=self.total))

    def _push_segment(self, header, gradient, into):
        np.concatenate(gradient, out=self.segment.gradient)
        header.shared_memory_token = self.segment.token
        requests = [
            pb.TrainRequest(header=header),
            pb.TrainRequest(commit=pb.StreamCommit(total_elements=self.total)),
        ]
        answer = self.stream.step(requests, into, self.client.options.wait_deadline)
        if answer.parameters_in_shared_memory:
            at = 0
            for n, size in zip(self.names, self.sizes):
                np.copyto(into[n], self.segment.parameters[at : at + size])
                at += size
        return answer

    def _attach(self):
        if self.segment is not None:
            self.segment.close()
        if not self.client.options.shared_memory or self.dtype != FLOAT32:
            return None
        return shm.attach(self.client, self.run_id, self.replica, self.total)

    def reset(self):
        """Ends the Train stream (the next push opens a new one)."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def close(self):
        self.reset()
        if self.segment is not None:
            self.segment.close()
            self.segment = None
