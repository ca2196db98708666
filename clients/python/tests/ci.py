"""The build's Python step (clients/python/pom.xml, integration-test phase): installs the
package with pip exactly as a user would (stubs generated from proto/) into SITE, then runs
pytest on it. Without the Python dependencies it says so and skips, except under CI=true,
where that is a failure.

usage: python3 tests/ci.py SITE [pytest args...]
"""

import importlib.util
import os
import subprocess
import sys

NEEDED = ["grpc", "grpc_tools", "google.protobuf", "google.rpc", "numpy", "torch",
          "safetensors", "pytest", "setuptools"]


def found(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def main():
    site, extra = sys.argv[1], sys.argv[2:]
    missing = [m for m in NEEDED if not found(m)]
    if missing:
        print("clients/python: missing Python packages %s (python3 -m pip install grpcio "
              "grpcio-tools protobuf googleapis-common-protos numpy torch safetensors pytest)"
              % ", ".join(missing))
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            print("clients/python: CI is set: failing instead of skipping")
            return 1
        print("clients/python: tests SKIPPED")
        return 0
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                    "--no-deps", "--upgrade", "--target", site, here], check=True)
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(here, "tests")] + extra, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
