"""Same-host fast path: the replica's shared-memory segment (AttachSharedMemoryResponse).

The file holds, little-endian: "RDLSHM01", the 16-byte token, total_elements (int64), then a
gradient region (the replica writes it) and a parameters region (the server writes y there),
each total_elements float32 values, the run's tensors in RunSpec order, back to back.
"""

import mmap
import os

import numpy as np

MAGIC = b"RDLSHM01"


class Segment:
    """A mapped segment: ``gradient`` and ``parameters`` are flat float32 views of the file."""

    def __init__(self, answer, total_elements):
        # The server made this file; a symbolic link in its place is not followed.
        fd = os.open(answer.path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        try:
            self._map = mmap.mmap(fd, answer.size_bytes)
        finally:
            os.close(fd)
        head = self._map[:32]
        if head[:8] != MAGIC or head[8:24] != answer.token:
            raise OSError("%s is not this replica's segment" % answer.path)
        if int.from_bytes(head[24:32], "little") != total_elements:
            raise OSError("segment %s holds another run's layout" % answer.path)
        self.token = answer.token
        self.total_elements = total_elements
        self.path = answer.path
        self.gradient = np.ndarray((total_elements,), "<f4", self._map, answer.gradient_offset)
        self.parameters = np.ndarray((total_elements,), "<f4", self._map, answer.parameters_offset)

    def close(self):
        self.gradient = self.parameters = None
        try:
            self._map.close()
        except BufferError:
            pass  # a view is still alive somewhere; the mapping goes with it


def attach(client, run_id, replica, total_elements):
    """Maps the replica's segment when the server offers one and its files are visible from
    here; returns None (send chunks) otherwise. Raises only for errors other than "not here"."""
    from roadless import errors

    try:
        probe = client.attach_shared_memory(run_id, replica)
        if not probe.probe_path:
            return None
        fd = os.open(probe.probe_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            proof = f.read()
        answer = client.attach_shared_memory(run_id, replica, proof)
        if not answer.path:
            return None
        return Segment(answer, total_elements)
    except errors.SharedMemoryUnavailable:
        return None
    except OSError:
        return None
