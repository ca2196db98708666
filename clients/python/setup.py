"""Build hook: generates roadless/{common,optimizer,trainer,checkpoint}/v1/*_pb2*.py from the
project's protos (../../proto/src/main/proto) with grpcio-tools, into the build directory only.

The generated modules live under the proto packages' own names (``roadless.optimizer.v1``),
because protoc's Python output imports its dependencies by proto package
(``from roadless.common.v1 import tensor_pb2``). No copy of the protos is kept here: a build
that cannot find them fails, naming where it looked. ROADLESS_PROTO_DIR overrides the location.
"""

import os
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def proto_root():
    candidates = []
    if os.environ.get("ROADLESS_PROTO_DIR"):
        candidates.append(pathlib.Path(os.environ["ROADLESS_PROTO_DIR"]))
    candidates.append(HERE.parent.parent / "proto" / "src" / "main" / "proto")
    for c in candidates:
        if (c / "roadless" / "optimizer" / "v1" / "optimizer_service.proto").is_file():
            return c
    raise SystemExit(
        "roadless: cannot find the protos (looked in %s); build from the repository "
        "(pip install ./clients/python) or set ROADLESS_PROTO_DIR" % ", ".join(map(str, candidates))
    )


def generate(root, out):
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(root)) for p in (root / "roadless").rglob("*.proto"))
    include = str(pathlib.Path(grpc_tools.__file__).parent / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", "-I" + str(root), "-I" + include]
    args += ["--python_out=" + str(out), "--pyi_out=" + str(out), "--grpc_python_out=" + str(out)]
    if protoc.main(args + protos) != 0:
        raise SystemExit("roadless: protoc failed on " + " ".join(protos))
    # Namespace-free packages: every generated directory gets an __init__.py.
    for d in {(out / p).parent for p in protos}:
        while d != out:
            (d / "__init__.py").touch()
            d = d.parent


class BuildWithProtos(build_py):
    def run(self):
        super().run()
        generate(proto_root(), pathlib.Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithProtos})
