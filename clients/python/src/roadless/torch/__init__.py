"""PyTorch drop-in Schedule-Free optimizers whose state lives on a Roadless optimizer server.

Switching from the authors' package is a change of import plus a target::

    from roadless.torch import AdamWScheduleFree
    opt = AdamWScheduleFree(model.named_parameters(), lr=1e-3, target="opt:50051", run_id="r1")
    opt.train()
    ...; loss.backward(); opt.step()
    with opt.at_x():        # x in the parameters inside the block
        evaluate(model)
"""

from roadless.torch.optimizers import (  # noqa: F401
    AdamWScheduleFree,
    AdamWScheduleFreePaper,
    AdamWScheduleFreeReference,
    RAdamScheduleFree,
    ScheduleFreeWrapper,
    SGDScheduleFree,
    SGDScheduleFreeReference,
)
from roadless.torch._base import ServerOptimizer  # noqa: F401
from roadless.torch.bn import bn_warmup, save_eval_checkpoint  # noqa: F401

__all__ = [
    "SGDScheduleFree", "SGDScheduleFreeReference", "AdamWScheduleFree",
    "AdamWScheduleFreeReference", "AdamWScheduleFreePaper", "RAdamScheduleFree",
    "ScheduleFreeWrapper", "ServerOptimizer", "bn_warmup", "save_eval_checkpoint",
]
