"""BatchNorm at x, and eval checkpoints from Python.

BN layers gather their running statistics in training-mode forward passes, which happen at y.
Before evaluating or saving at x the statistics must be recomputed at x: the authors' recipe is
a BN warmup, about 50 training batches forward at x with BN in training mode and gradients off.
"""

import contextlib
import json

import torch

_BN = (torch.nn.modules.batchnorm._BatchNorm,)


def has_batchnorm(model):
    return any(isinstance(m, _BN) for m in model.modules())


def _inputs(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def bn_warmup(model, loader, batches=50, optimizer=None, device=None):
    """Recomputes BN running statistics at x: ``optimizer.eval()`` (x in the parameters; without
    an optimizer the caller must hold x, e.g. inside ``with opt.at_x():``), the model in training
    mode, no gradients, ``batches`` batches of ``loader`` forward (the inputs are the first item
    of a tuple batch), then ``model.eval()``. The optimizer stays at x."""
    if optimizer is not None:
        optimizer.eval()
    model.train()
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        x = _inputs(batch)
        model(x.to(device) if device is not None else x)
    model.eval()
    return model


def save_eval_checkpoint(model, optimizer, path, loader=None, batches=50, device=None,
                         metadata=None):
    """Saves the model at x as safetensors, under its state_dict names, loadable with
    ``model.load_state_dict(safetensors.torch.load_file(path), strict=True)``. With a loader
    and BN layers, the BN statistics are first recomputed at x (bn_warmup). Training is left as
    it was: the optimizer's mode, the model's mode and the BN buffers are restored afterwards.
    Returns the metadata written (run, step, BN warmup batches)."""
    from safetensors.torch import save_file

    was_training = model.training
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    with optimizer.at_x() if optimizer is not None else contextlib.nullcontext():
        warm = 0
        if loader is not None and has_batchnorm(model):
            bn_warmup(model, loader, batches=batches, device=device)
            warm = batches
        state = {n: t.detach().to("cpu").contiguous().clone() for n, t in model.state_dict().items()}
        info = {"format": "pt", "sequence": "x", "bn_warmup_batches": str(warm)}
        if optimizer is not None:
            info.update(run_id=optimizer.run_id, step=str(optimizer.step_count))
        info.update({k: str(v) for k, v in (metadata or {}).items()})
        save_file(state, str(path), metadata=info)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    model.train(was_training)
    return json.loads(json.dumps(info))
