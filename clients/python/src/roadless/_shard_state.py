"""A sharded run's full state as one server's state and back (the Python side of the Java
``ShardedState``): ``gather`` joins the S shards' exports, all from one step, into the export one
server would give for the whole run; ``split`` cuts a whole export (any S's, once gathered) into
the shards' states by the plan. Importing the pieces and training on continues bit-identically:
an element's state is its z, x and moments, wherever it lives."""

from roadless.optimizer.v1 import optimizer_service_pb2 as pb


def step(header):
    """The step a state is at (every group of a run is at the same step)."""
    return header.groups[0].step if header.groups else 0


def _chunk(slot, chunk):
    return pb.ExportStateResponse(chunk=pb.StateChunk(slot=slot, chunk=chunk))


def gather(plan, parts):
    """The whole run's export from each shard's (lists of ExportStateResponse, shard order)."""
    if len(plan.shards) == 1:
        return parts[0]
    headers = [p[0].header for p in parts]
    groups = {}
    for h in headers:
        if list(h.slots) != list(headers[0].slots):
            raise ValueError("the shards' states hold different slots")
        for g in h.groups:
            if groups.setdefault(g.name, g) != g:
                raise ValueError("group '%s' differs between shards" % g.name)
    header = pb.StateHeader(run_id=headers[0].run_id, spec=plan.spec, slots=headers[0].slots,
                            format_version=headers[0].format_version)
    header.groups.extend(groups[g.name] for g in plan.spec.parameter_groups)
    out = [pb.ExportStateResponse(header=header)]
    names = plan.names
    total = 0
    for shard, messages in zip(plan.shards, parts):
        pieces = {p.name: p for p in shard.pieces}
        for m in messages[1:]:
            if m.WhichOneof("item") != "chunk":
                continue
            c = m.chunk.chunk
            p = pieces.get(c.name)
            if p is None:
                raise ValueError("shard %d sent a chunk of unknown tensor %s" % (shard.index, c.name))
            moved = type(c)()
            moved.CopyFrom(c)
            moved.name = names[p.tensor]
            moved.element_offset = p.start + c.element_offset
            out.append(_chunk(m.chunk.slot, moved))
            total += len(c.data) // 4
    out.append(pb.ExportStateResponse(end=pb.StreamCommit(total_elements=total)))
    return out


def split(plan, whole):
    """Each shard's export (shard order) cut from a whole export by ``plan``."""
    if len(plan.shards) == 1:
        return [whole]
    h = whole[0].header
    groups = {g.name: g for g in h.groups}
    out = []
    where = {}  # whole tensor index -> [(shard, piece)]
    for s in plan.shards:
        sub = pb.StateHeader()
        sub.CopyFrom(h)
        sub.ClearField("initial_values_digest")
        sub.spec.CopyFrom(s.spec)
        del sub.groups[:]
        sub.groups.extend(groups[g.name] for g in s.spec.parameter_groups)
        out.append([pb.ExportStateResponse(header=sub)])
        for p in s.pieces:
            where.setdefault(p.tensor, []).append((s.index, p))
    index = {n: t for t, n in enumerate(plan.names)}
    totals = [0] * len(plan.shards)
    for m in whole[1:]:
        if m.WhichOneof("item") != "chunk":
            continue
        c = m.chunk.chunk
        t = index.get(c.name)
        if t is None:
            raise ValueError("a chunk of unknown tensor %s" % c.name)
        lo = c.element_offset
        hi = lo + len(c.data) // 4
        for s, p in where[t]:
            a, b = max(lo, p.start), min(hi, p.stop)
            if a < b:
                part = type(c)()
                part.CopyFrom(c)
                part.name = p.name
                part.element_offset = a - p.start
                part.data = c.data[(a - lo) * 4:(b - lo) * 4]
                out[s].append(_chunk(m.chunk.slot, part))
                totals[s] += b - a
    for s in range(len(out)):
        out[s].append(pb.ExportStateResponse(end=pb.StreamCommit(total_elements=totals[s])))
    return out
