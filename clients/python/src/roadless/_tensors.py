"""Tensors on the wire: flat little-endian float32 (or bfloat16) numpy arrays, cut into chunks
well below gRPC's 4 MiB message limit (TensorChunk in roadless/common/v1/tensor.proto)."""

import numpy as np

from roadless.common.v1 import tensor_pb2

FLOAT32 = tensor_pb2.DATA_TYPE_FLOAT32
BFLOAT16 = tensor_pb2.DATA_TYPE_BFLOAT16
DEFAULT_CHUNK_BYTES = 1 << 20


def to_bfloat16_bytes(values):
    """float32 -> bfloat16 with round-to-nearest-even, as little-endian bytes."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
    # NaN stays NaN (the server refuses it by name rather than as an infinity).
    nan = np.isnan(values)
    if nan.any():
        rounded = np.where(nan, (bits >> 16) | 0x40, rounded)
    return rounded.astype("<u2").tobytes()


def chunks(names, arrays, dtype=FLOAT32, chunk_bytes=DEFAULT_CHUNK_BYTES):
    """TensorChunk messages covering every array (flat float32) exactly once, in order."""
    size = 2 if dtype == BFLOAT16 else 4
    per = max(1, chunk_bytes // size)
    for name, a in zip(names, arrays):
        a = np.ascontiguousarray(a, dtype="<f4").reshape(-1)
        for at in range(0, a.size, per):
            part = a[at : at + per]
            data = to_bfloat16_bytes(part) if dtype == BFLOAT16 else part.tobytes()
            yield tensor_pb2.TensorChunk(name=name, element_offset=at, dtype=dtype, data=data)


def put_chunk(chunk, into):
    """Writes a float32 chunk into ``into[name]`` (a flat float32 array)."""
    if chunk.dtype != FLOAT32:
        raise ValueError("expected float32 chunks, got dtype %d" % chunk.dtype)
    values = np.frombuffer(chunk.data, dtype="<f4")
    into[chunk.name][chunk.element_offset : chunk.element_offset + values.size] = values
    return values.size


def element_count(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n
