"""A Python replica that trains through the optimizer's shared-memory segment.

Only grpcio, protobuf and numpy: the messages come from a FileDescriptorSet (no generated
code), the segment is a numpy memmap of the file AttachSharedMemory names. It proves the
layout documented on AttachSharedMemoryResponse is enough for a client in another language.

usage: shm_client.py PORT DESCRIPTORS RUN STEPS OUT
  Trains STEPS SYNC steps as replica 0 of RUN with the gradient g = y * 0.5 + 0.25 (float32),
  then writes x (EVAL, float32 little-endian, tensors in spec order) to OUT and prints one line
  per step and a summary.
"""

import queue
import sys

import grpc
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "/roadless.optimizer.v1.OptimizerService/"


def messages(path):
    pool = descriptor_pool.DescriptorPool()
    files = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
    for f in files.file:
        pool.Add(f)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def main():
    port, descriptors, run, steps, out = sys.argv[1:6]
    steps = int(steps)
    msg = messages(descriptors)
    Attach = msg("roadless.optimizer.v1.AttachSharedMemoryRequest")
    AttachAnswer = msg("roadless.optimizer.v1.AttachSharedMemoryResponse")
    GetParams = msg("roadless.optimizer.v1.GetParametersRequest")
    ParamsAnswer = msg("roadless.optimizer.v1.GetParametersResponse")
    TrainRequest = msg("roadless.optimizer.v1.TrainRequest")
    TrainResponse = msg("roadless.optimizer.v1.TrainResponse")
    Status = msg("roadless.optimizer.v1.GetRunStatusRequest")
    StatusAnswer = msg("roadless.optimizer.v1.GetRunStatusResponse")

    channel = grpc.insecure_channel("127.0.0.1:" + port)

    def unary(method, response):
        return channel.unary_unary(
            SERVICE + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )

    status = unary("GetRunStatus", StatusAnswer)(Status(run_id=run)).status
    names = [t.name for t in status.spec.tensors]
    sizes = [int(np.prod(t.shape)) for t in status.spec.tensors]
    total = sum(sizes)

    def parameters(sequence):
        stream = channel.unary_stream(
            SERVICE + "GetParameters",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=ParamsAnswer.FromString,
        )
        flat = np.empty(total, np.float32)
        starts = dict(zip(names, np.cumsum([0] + sizes[:-1])))
        for m in stream(GetParams(run_id=run, sequence=sequence)):
            if m.HasField("chunk"):
                c = m.chunk
                values = np.frombuffer(c.data, "<f4")
                at = starts[c.name] + c.element_offset
                flat[at : at + len(values)] = values
            elif m.HasField("header"):
                step = m.header.step
        return step, flat

    # 1. Locality: read the probe file, then ask for the segment with its bytes.
    attach = unary("AttachSharedMemory", AttachAnswer)
    probe = attach(Attach(run_id=run, replica=0)).probe_path
    proof = open(probe, "rb").read()
    seg = attach(Attach(run_id=run, replica=0, locality_proof=proof))
    mapped = np.memmap(seg.path, dtype=np.uint8, mode="r+", shape=(seg.size_bytes,))
    assert bytes(mapped[0:8]) == b"RDLSHM01", "not a segment"
    assert bytes(mapped[8:24]) == seg.token, "another segment"
    assert int(np.frombuffer(mapped[24:32], "<i8")[0]) == total
    gradient = np.ndarray((total,), "<f4", mapped, seg.gradient_offset)
    params = np.ndarray((total,), "<f4", mapped, seg.parameters_offset)

    # 2. The Train stream: header naming the token, commit; the answer's y is in the segment.
    outbox = queue.Queue()
    train = channel.stream_stream(
        SERVICE + "Train",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=TrainResponse.FromString,
    )
    answers = train(iter(outbox.get, None))
    step, y = parameters(1)  # SEQUENCE_TRAIN
    half, quarter = np.float32(0.5), np.float32(0.25)
    while step < steps:
        gradient[:] = y * half + quarter
        outbox.put(
            TrainRequest(
                header={
                    "run_id": run,
                    "replica": 0,
                    "step": step,
                    "dtype": 1,  # DATA_TYPE_FLOAT32
                    "shared_memory_token": seg.token,
                }
            )
        )
        outbox.put(TrainRequest(commit={"total_elements": total}))
        header = next(answers)
        assert header.HasField("header"), header
        assert header.header.parameters_in_shared_memory, "y did not come through the segment"
        end = next(answers)
        assert end.HasField("end") and end.end.total_elements == total, end
        step = header.header.parameters.step
        y = params.copy()
        print("step", step, "y[0]", float(y[0]), flush=True)
    outbox.put(None)
    at, x = parameters(2)  # SEQUENCE_EVAL
    x.astype("<f4").tofile(out)
    print("done: %d steps through shared memory, x at step %d" % (steps, at), flush=True)


if __name__ == "__main__":
    main()
