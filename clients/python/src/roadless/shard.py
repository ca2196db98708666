"""How one run is spread over S optimizer servers: the Python port of the Java client's
``dev.roadless.optimizer.shard.ShardPlan`` and ``ShardNames``, bit for bit the same plan (the
shard tensor names are the contract: the checkpoint service and the Java clients find a run's
pieces by them). testdata/shard-plans.json, written from the Java code, checks both sides.

The run's tensors, in spec order, are laid end to end and cut into S element ranges of equal
size. A cut inside a tensor moves to the tensor's nearer edge when that is within ``SNAP`` of a
shard's share, so small tensors stay whole; a larger tensor stays cut by element range. Each shard
is an ordinary run with the same id, variant, replicas, mode and groups (each restricted to the
shard's pieces, empty groups dropped) and these tensor names::

    {index}:all:{name}                  the whole tensor, with its shape
    {index}:{from}-{to}/{shape}:{name}  elements [from, to) of it, shape [to - from]

With S = 1 the plan is the identity (an unsharded run is a one-shard run). Only SYNC runs can be
sharded.
"""

import bisect
import dataclasses
import math

import numpy as np

from roadless.optimizer.v1 import run_pb2

SNAP = 0.02  # the largest distance, as a fraction of a shard's share, a cut moves to an edge
MAX_NAME = 256  # the longest tensor name the optimizer accepts


@dataclasses.dataclass(frozen=True)
class Piece:
    """Elements [start, stop) of whole tensor ``tensor``, stored on one shard as ``name``."""

    tensor: int
    name: str
    start: int
    stop: int
    whole: bool

    @property
    def length(self):
        return self.stop - self.start


@dataclasses.dataclass(frozen=True)
class Shard:
    """One shard: its index, the RunSpec of its run and its pieces in that spec's order."""

    index: int
    spec: object
    pieces: tuple

    @property
    def names(self):
        return [p.name for p in self.pieces]


def numel(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def shard_name(index, descriptor, start, stop, whole):
    if whole:
        derived = "%d:all:%s" % (index, descriptor.name)
    else:
        shape = "x".join(str(int(d)) for d in descriptor.shape)
        derived = "%d:%d-%d/%s:%s" % (index, start, stop, shape, descriptor.name)
    if len(derived) > MAX_NAME:
        raise ValueError("tensor %r is too long a name to shard (%s)" % (descriptor.name, derived))
    return derived


def cuts(sizes, total, shards):
    """Cut positions 0 = c_0 < c_1 < ... < c_S = total in the concatenated elements."""
    edges = [0]
    for s in sizes:
        edges.append(edges[-1] + s)
    out = [0] * (shards + 1)
    out[shards] = total
    snap = math.floor(SNAP * total / shards)
    for s in range(1, shards):
        ideal = total * s // shards
        at = bisect.bisect_left(edges, ideal)
        cut = ideal
        if at == len(edges) or edges[at] != ideal:  # edges[at - 1] < ideal < edges[at]
            below, above = edges[at - 1], edges[at]
            nearer = below if ideal - below <= above - ideal else above
            if abs(nearer - ideal) <= snap:
                cut = nearer
        cut = max(cut, out[s - 1] + 1)  # keep every shard non-empty
        cut = min(cut, total - (shards - s))
        out[s] = cut
    return out


class ShardPlan:
    """The plan of ``spec`` (a RunSpec) over ``shards`` servers; ValueError if S is below 1 or
    above the run's elements, an ASYNC run is sharded, or a derived name would be too long."""

    def __init__(self, spec, shards):
        if shards < 1:
            raise ValueError("shards must be >= 1, not %d" % shards)
        self.spec = spec
        self.sizes = [numel(d.shape) for d in spec.tensors]
        total = sum(self.sizes)
        if shards == 1:
            pieces = tuple(Piece(t, d.name, 0, self.sizes[t], True)
                           for t, d in enumerate(spec.tensors))
            self.shards = [Shard(0, spec, pieces)]
            return
        if spec.mode == run_pb2.STEP_MODE_ASYNC:
            raise ValueError("only SYNC runs can be sharded")
        if total < shards:
            raise ValueError("%d elements cannot fill %d shards" % (total, shards))
        c = cuts(self.sizes, total, shards)
        self.shards = []
        for s in range(shards):
            pieces = self._pieces(c[s], c[s + 1])
            self.shards.append(Shard(s, self._sub_spec(pieces), pieces))

    def _pieces(self, lo, hi):
        out, start = [], 0
        for t, size in enumerate(self.sizes):
            end = start + size
            a, b = max(start, lo), min(end, hi)
            if a < b:
                f, to = a - start, b - start
                whole = f == 0 and to == size
                d = self.spec.tensors[t]
                out.append(Piece(t, shard_name(t, d, f, to, whole), f, to, whole))
            start = end
        return tuple(out)

    def _sub_spec(self, pieces):
        sub = run_pb2.RunSpec()
        sub.CopyFrom(self.spec)
        del sub.tensors[:]
        del sub.parameter_groups[:]
        by_name = {}
        for p in pieces:
            d = sub.tensors.add()
            d.CopyFrom(self.spec.tensors[p.tensor])
            d.name = p.name
            if not p.whole:
                del d.shape[:]
                d.shape.append(p.length)
            by_name.setdefault(self.spec.tensors[p.tensor].name, []).append(p.name)
        for g in self.spec.parameter_groups:
            names = [n for t in g.tensor_names for n in by_name.get(t, [])]
            if names:
                group = sub.parameter_groups.add()
                group.CopyFrom(g)
                del group.tensor_names[:]
                group.tensor_names.extend(names)
        return sub

    def __len__(self):
        return len(self.shards)

    @property
    def names(self):
        """The whole run's tensor names, in spec order."""
        return [d.name for d in self.spec.tensors]

    def split(self, whole):
        """Whole flat float32 arrays (spec order) -> each shard's list of arrays (its spec's
        order); pieces are views, not copies."""
        if len(whole) != len(self.sizes):
            raise ValueError("%d tensors, the run has %d" % (len(whole), len(self.sizes)))
        return [[whole[p.tensor][p.start:p.stop] for p in s.pieces] for s in self.shards]

    def assemble(self, per_shard, into=None):
        """Each shard's {name: flat array} -> the whole {name: flat float32 array}, written into
        ``into`` (whole name -> flat float32 array) when given."""
        out = into if into is not None else {
            n: np.empty(size, np.float32) for n, size in zip(self.names, self.sizes)}
        names = self.names
        for s in self.shards:
            part = per_shard[s.index]
            for p in s.pieces:
                values = part[p.name]
                if values.size != p.length:
                    raise ValueError("shard %d sent %d elements for %s"
                                     % (s.index, values.size, p.name))
                target = out[names[p.tensor]]
                if values is not target:
                    target[p.start:p.stop] = values
        return out

    def holders(self, group):
        """The shards whose spec holds ``group``, in shard order."""
        return [s.index for s in self.shards
                if any(g.name == group for g in s.spec.parameter_groups)]
