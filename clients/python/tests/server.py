"""Starts a real optimizer-service process (the jar the Maven build made) for the tests."""

import os
import pathlib
import signal
import subprocess
import time

import grpc

REPO = pathlib.Path(__file__).resolve().parents[3]


def jar():
    path = pathlib.Path(
        os.environ.get(
            "ROADLESS_OPTIMIZER_JAR", REPO / "optimizer-service/target/optimizer-service-all.jar"
        )
    )
    if not path.is_file():
        raise RuntimeError(
            "no optimizer jar at %s: build it with "
            "./mvnw -B -q -pl optimizer-service -am package -DskipTests" % path
        )
    return path


class OptimizerServer:
    """One optimizer-service process on a free loopback port. restart() keeps the port and the
    snapshot directory, so clients find the same server again."""

    # Quick start-up for short test runs; the bench passes the JVM's defaults instead.
    TEST_JVM = ("-XX:TieredStopAtLevel=1", "-Xmx1g")

    def __init__(self, workdir, snapshot_every_steps=0, shared_memory=True, jvm=TEST_JVM,
                 threads=2, tls=None):
        """``tls``: (certificate, key, access file) to serve TLS with tokens; else plaintext."""
        self.tls = tls
        self.workdir = pathlib.Path(workdir)
        self.snapshots = self.workdir / "snapshots"
        self.shm = pathlib.Path("/dev/shm") / ("roadless-test-%d-%d" % (os.getpid(), id(self)))
        self.snapshot_every_steps = snapshot_every_steps
        self.shared_memory = shared_memory
        self.jvm = list(jvm)
        self.threads = threads
        self.port = 0
        self.process = None
        self.log = self.workdir / "optimizer.log"

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=60):
        port_file = self.workdir / "port"
        if port_file.exists():
            port_file.unlink()
        self.shm.mkdir(parents=True, exist_ok=True)
        args = ["java", "--add-modules=jdk.incubator.vector"] + self.jvm + [
            "-jar", str(jar()),
            "--port=%d" % self.port, "--port-file=%s" % port_file, "--metrics-port=-1",
            "--threads=%d" % self.threads, "--drain-seconds=0",
            "--shared-memory-dir=%s" % (self.shm if self.shared_memory else ""),
        ]
        if self.tls:
            cert, key, access = self.tls
            args += ["--tls-cert=%s" % cert, "--tls-key=%s" % key, "--access-file=%s" % access]
        else:
            args.append("--plaintext=true")
        if self.snapshot_every_steps:
            args += ["--snapshot-dir=%s" % self.snapshots,
                     "--snapshot-every-steps=%d" % self.snapshot_every_steps]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        give_up = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                raise RuntimeError("optimizer exited: " + self.log.read_text()[-3000:])
            if time.monotonic() > give_up:
                raise RuntimeError("optimizer did not start: " + self.log.read_text()[-3000:])
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        if not self.tls:
            channel = grpc.insecure_channel(self.target)
            grpc.channel_ready_future(channel).result(timeout=timeout)
            channel.close()
        return self

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.shm.exists():
            for f in self.shm.iterdir():
                f.unlink()
            self.shm.rmdir()
