"""The shard plan contract: roadless.shard gives exactly the plans the Java ShardPlan wrote into
testdata/shard-plans.json (optimizer-client's ShardPlanContractTest checks the Java side against
the same file), and split/assemble and the state split/gather are exact inverses."""

import json
import os
import pathlib

import numpy as np
import pytest

from roadless import _shard_state
from roadless.common.v1 import tensor_pb2
from roadless.optimizer.v1 import optimizer_service_pb2 as pb
from roadless.optimizer.v1 import run_pb2
from roadless.shard import ShardPlan

REPO = pathlib.Path(__file__).resolve().parents[3]
PLANS = pathlib.Path(os.environ.get("ROADLESS_SHARD_PLANS", REPO / "testdata/shard-plans.json"))
CASES = json.loads(PLANS.read_text())["cases"]


def spec_of(case_spec, mode=run_pb2.STEP_MODE_SYNC):
    spec = run_pb2.RunSpec(variant=run_pb2.OPTIMIZER_VARIANT_ADAMW, replicas=2, mode=mode)
    for t in case_spec["tensors"]:
        spec.tensors.add(name=t["name"], shape=t["shape"], dtype=tensor_pb2.DATA_TYPE_FLOAT32)
    for name, tensors in case_spec["groups"]:
        spec.parameter_groups.add(name=name, tensor_names=tensors,
                                  hyperparameters=run_pb2.Hyperparameters(lr=1e-3))
    return spec


def test_contractFile_coversTheCasesTheIssueNames():
    names = {c["name"] for c in CASES}
    assert {"gpt2-small", "huge-embedding", "odd-sizes"} <= names
    assert {c["shards"] for c in CASES} == set(range(1, 9))
    # Some plan splits a tensor by element range, or the file would not test the names of pieces.
    assert any(not p[3] for c in CASES for s in c["plan"] for p in s["pieces"])


@pytest.mark.parametrize("case", CASES, ids=["%s-S%d" % (c["name"], c["shards"]) for c in CASES])
def test_plan_isTheJavaPlan(case):
    plan = ShardPlan(spec_of(case["spec"]), case["shards"])
    got = [{"groups": [[g.name, list(g.tensor_names)] for g in s.spec.parameter_groups],
            "pieces": [[p.tensor, p.start, p.stop, p.whole, p.name] for p in s.pieces]}
           for s in plan.shards]
    assert got == case["plan"]
    for s in plan.shards:  # the shard's spec lists its pieces, with a piece's flat shape
        assert [d.name for d in s.spec.tensors] == s.names
        for d, p in zip(s.spec.tensors, s.pieces):
            whole = plan.spec.tensors[p.tensor]
            assert list(d.shape) == (list(whole.shape) if p.whole else [p.length])


def test_asyncOrTooManyShards_refused():
    case = next(c for c in CASES if c["name"] == "tiny")
    with pytest.raises(ValueError, match="SYNC"):
        ShardPlan(spec_of(case["spec"], run_pb2.STEP_MODE_ASYNC), 2)
    with pytest.raises(ValueError, match="cannot fill"):
        ShardPlan(spec_of(case["spec"]), 8)
    with pytest.raises(ValueError):
        ShardPlan(spec_of(case["spec"]), 0)


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_splitThenAssemble_givesTheSameBits(shards):
    case = next(c for c in CASES if c["name"] == "odd-sizes")
    plan = ShardPlan(spec_of(case["spec"]), shards)
    rng = np.random.default_rng(shards)
    whole = [rng.standard_normal(size).astype(np.float32) for size in plan.sizes]
    parts = plan.split(whole)
    per_shard = [dict(zip(s.names, parts[s.index])) for s in plan.shards]
    back = plan.assemble(per_shard)
    for name, w in zip(plan.names, whole):
        assert back[name].tobytes() == w.tobytes()


@pytest.mark.parametrize("shards", [2, 3])
def test_stateSplitThenGather_isTheWholeState(shards):
    case = next(c for c in CASES if c["name"] == "odd-sizes")
    plan = ShardPlan(spec_of(case["spec"]), shards)
    groups = [run_pb2.GroupStatus(name=g.name, step=4) for g in plan.spec.parameter_groups]
    header = pb.StateHeader(run_id="r", spec=plan.spec, groups=groups, slots=[1, 2],
                            format_version=1)
    whole = [pb.ExportStateResponse(header=header)]
    rng = np.random.default_rng(0)
    for slot in (1, 2):
        for d, size in zip(plan.spec.tensors, plan.sizes):
            data = rng.standard_normal(size).astype("<f4")
            for at in range(0, size, 5):  # chunks that straddle the pieces' edges
                whole.append(pb.ExportStateResponse(chunk=pb.StateChunk(
                    slot=slot, chunk=tensor_pb2.TensorChunk(
                        name=d.name, element_offset=at, data=data[at:at + 5].tobytes()))))
    whole.append(pb.ExportStateResponse(end=pb.StreamCommit(total_elements=2 * sum(plan.sizes))))
    parts = _shard_state.split(plan, whole)
    for s, part in zip(plan.shards, parts):
        assert part[0].header.spec == s.spec
        assert part[-1].end.total_elements == 2 * sum(p.length for p in s.pieces)
    gathered = _shard_state.gather(plan, parts)
    assert gathered[0].header == header

    def values(messages):
        out = {}
        for m in messages[1:-1]:
            c = m.chunk
            buf = out.setdefault((c.slot, c.chunk.name), {})
            for i, v in enumerate(np.frombuffer(c.chunk.data, "<f4")):
                buf[c.chunk.element_offset + i] = v.tobytes()
        return out

    assert values(gathered) == values(whole)
    assert gathered[-1].end.total_elements == whole[-1].end.total_elements
