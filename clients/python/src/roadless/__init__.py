"""Roadless from Python: a client of the Schedule-Free optimizer state server.

- ``roadless.OptimizerClient``: the v1 API with deadlines, retries and typed errors;
- ``roadless.torch``: PyTorch drop-in optimizers whose state lives on the server;
- ``roadless.errors``: one exception class per ``google.rpc.ErrorInfo`` reason.

The message and stub modules are generated from the project's protos when the package is built:
``roadless.optimizer.v1.optimizer_service_pb2`` and friends.
"""

from roadless.errors import RoadlessError  # noqa: F401
from roadless.client import ClientOptions, OptimizerClient  # noqa: F401

__version__ = "0.1.0"
