"""Small deterministic models, data and training loops shared by the tests (and the
torch.multiprocessing children, which import this module)."""

import torch

import roadless.torch as rt


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def batches(steps, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 8, generator=g), torch.randint(0, 3, (size,), generator=g))
            for _ in range(steps)]


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def train(model, opt, data, part=None, parts=1, swap_every=0):
    """Trains until the run reaches len(data) steps, driving the loop by the run's step count
    (so a trainer that resumes after a server restart lands on the right batch). ``part`` of
    ``parts`` takes that share of every batch (data parallel)."""
    loss_fn = torch.nn.CrossEntropyLoss()
    opt.train()
    while opt.step_count < len(data):
        x, y = data[opt.step_count]
        if part is not None:
            x, y = x.chunk(parts)[part], y.chunk(parts)[part]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if swap_every and opt.step_count % swap_every == 0:
            with opt.at_x():
                model(x)
    return model


def replica(rank, world, target, run_id, steps, out):
    """A torch.multiprocessing child: replica ``rank`` of a SYNC run on half batches."""
    model = mlp()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                               target=target, run_id=run_id, replica=rank, replicas=world)
    train(model, opt, batches(steps), part=rank, parts=world)
    with opt.at_x():
        out[rank] = flat(model)
    opt.close()


def replica_resume(rank, world, target, run_id, steps, cut, out):
    """A torch.multiprocessing child, replica ``rank`` of SYNC runs on half batches: trains one
    run straight through ``steps``; trains another to ``cut``, takes state_dict(), and loads it
    into a third run with fresh optimizers and other initial weights, then trains on to
    ``steps``. Records y and x of both endings and the exported state."""
    data = batches(steps)

    def optimizer(model, suffix):
        return rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                                    target=target, run_id=run_id + suffix, replica=rank,
                                    replicas=world)

    straight = mlp()
    opt = optimizer(straight, "-straight")
    train(straight, opt, data, part=rank, parts=world)
    with opt.at_x():
        x_straight = flat(straight)
    opt.close()

    first = mlp()
    opt = optimizer(first, "-first")
    train(first, opt, data[:cut], part=rank, parts=world)
    saved = opt.state_dict()
    opt.close()

    resumed = mlp(seed=7 + rank)  # other initial values: the state must replace them
    opt = optimizer(resumed, "-resumed")
    opt.load_state_dict(saved)
    resumed_at = opt.step_count
    train(resumed, opt, data, part=rank, parts=world)
    with opt.at_x():
        x_resumed = flat(resumed)
    opt.close()
    out[rank] = {
        "y_straight": flat(straight), "x_straight": x_straight,
        "y_resumed": flat(resumed), "x_resumed": x_resumed,
        "resumed_at": resumed_at, "export": list(saved["roadless"]["export"]),
    }


LR_CHANGE = (20, 0.004)  # (step, lr): a hyperparameter change every shard must apply at one step


def train_changing_lr(model, opt, data, part=None, parts=1, on_step=None):
    """train() with the learning rate changed at LR_CHANGE's step (before that step's push)."""
    loss_fn = torch.nn.CrossEntropyLoss()
    opt.train()
    while opt.step_count < len(data):
        if on_step:
            on_step(opt.step_count)
        if opt.step_count == LR_CHANGE[0]:
            for g in opt.param_groups:
                g["lr"] = LR_CHANGE[1]
        x, y = data[opt.step_count]
        if part is not None:
            x, y = x.chunk(parts)[part], y.chunk(parts)[part]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return model


def replica_runs(rank, world, runs, steps, out):
    """A torch.multiprocessing child: replica ``rank`` of each run in ``runs`` ({key: (run_id,
    server kwargs)}, trained one after the other, as every replica does) on half batches; records
    y and x of each."""
    data = batches(steps)
    for key, (run_id, where) in runs.items():
        model = mlp()
        opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                                   run_id=run_id, replica=rank, replicas=world, **where)
        train_changing_lr(model, opt, data, part=rank, parts=world)
        y = flat(model)
        with opt.at_x():
            x = flat(model)
        out[(key, rank)] = {"y": y, "x": x, "step": opt.step_count,
                            "lr": [g.hyperparameters.lr for g in opt.status().groups]}
        opt.close()
