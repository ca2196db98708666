// The Node control plane against real optimizer and checkpoint service processes (the jars the
// Maven build made), with node's test runner.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CheckpointClient, OptimizerClient, RoadlessError } from "../src/index";

const repo = path.resolve(__dirname, "../../../..");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "roadless-node-"));
const processes: ChildProcess[] = [];
let optimizer: OptimizerClient;
let checkpoints: CheckpointClient;

async function start(jar: string, name: string, flags: string[]): Promise<string> {
  if (!fs.existsSync(jar)) throw new Error(`no ${jar}: build it with ./mvnw -B -q -pl ${name} -am package -DskipTests`);
  const portFile = path.join(work, `${name}.port`);
  const log = fs.openSync(path.join(work, `${name}.log`), "w");
  const p = spawn("java", ["-XX:TieredStopAtLevel=1", "-jar", jar, "--port=0", `--port-file=${portFile}`, "--metrics-port=-1", "--plaintext=true", ...flags], {
    stdio: ["ignore", log, log],
  });
  processes.push(p);
  const giveUp = Date.now() + 60_000;
  while (!(fs.existsSync(portFile) && fs.readFileSync(portFile, "utf8").trim())) {
    if (p.exitCode !== null || Date.now() > giveUp) throw new Error(fs.readFileSync(path.join(work, `${name}.log`), "utf8"));
    await new Promise((r) => setTimeout(r, 50));
  }
  return `127.0.0.1:${fs.readFileSync(portFile, "utf8").trim()}`;
}

before(async () => {
  const opt = await start(
    process.env.ROADLESS_OPTIMIZER_JAR ?? path.join(repo, "optimizer-service/target/optimizer-service-all.jar"),
    "optimizer-service",
    ["--shared-memory-dir="],
  );
  const ckpt = await start(
    process.env.ROADLESS_CHECKPOINT_JAR ?? path.join(repo, "checkpoint-service/target/checkpoint-service-all.jar"),
    "checkpoint-service",
    [`--checkpoint-dir=${path.join(work, "checkpoints")}`, `--optimizer-target=${opt}`],
  );
  optimizer = new OptimizerClient(opt);
  checkpoints = new CheckpointClient(ckpt);
});

after(() => {
  optimizer?.close();
  checkpoints?.close();
  for (const p of processes) p.kill("SIGTERM");
  fs.rmSync(work, { recursive: true, force: true });
});

const spec = {
  tensors: [
    { name: "fc.weight", dtype: "DATA_TYPE_FLOAT32", shape: [2, 3] },
    { name: "fc.bias", dtype: "DATA_TYPE_FLOAT32", shape: [2] },
  ],
  parameter_groups: [{ name: "all", tensor_names: ["fc.weight", "fc.bias"], hyperparameters: { lr: 0.5 } }],
  variant: "OPTIMIZER_VARIANT_SGD",
  replicas: 1,
  mode: "STEP_MODE_SYNC",
};

test("createRun_thenStatusUpdateAndParameters_reflectTheRun", async () => {
  const created = await optimizer.createRun("node-run", spec);
  assert.equal(created.created, true);
  assert.equal((await optimizer.createRun("node-run", spec)).created, false); // idempotent
  assert.ok((await optimizer.listRuns()).includes("node-run"));

  const weight = new Float32Array([1, 2, 3, 4, 5, 6]);
  await optimizer.uploadInitialValues("node-run", new Map([["fc.weight", weight], ["fc.bias", new Float32Array([-1, 1])]]));
  const status = await optimizer.runStatus("node-run");
  assert.equal(status.initialized, true);
  assert.equal(Number(status.step), 0);
  assert.equal(status.spec.parameter_groups[0].hyperparameters.beta, 0.9); // defaults filled in

  const group = await optimizer.updateHyperparameters("node-run", "all", { lr: 0.25 });
  assert.equal(group.lr, 0.25);
  assert.equal((await optimizer.runStatus("node-run")).groups[0].hyperparameters.lr, 0.25);

  const x = await optimizer.parameters("node-run", "SEQUENCE_EVAL");
  assert.equal(x.step, 0);
  assert.deepEqual(Array.from(x.tensors.get("fc.weight")!), Array.from(weight));
  assert.deepEqual(Array.from(x.tensors.get("fc.bias")!), [-1, 1]);
});

test("saveCheckpoint_thenList_showsTheEvalAndStateCheckpoints", async () => {
  const saved = await checkpoints.saveCheckpoint("node-run", "x-0", { mode: "BATCH_NORM_MODE_NONE" });
  assert.equal(saved.kind, "CHECKPOINT_KIND_EVAL");
  assert.equal(Number(saved.step), 0);
  assert.ok(saved.files.some((f: { name: string }) => f.name === "model.safetensors"));
  await checkpoints.saveStateCheckpoint("node-run", "state-0");
  const names = (await checkpoints.listCheckpoints("node-run")).map((c: { name: string }) => c.name).sort();
  assert.deepEqual(names, ["state-0", "x-0"]);
});

test("runStatus_unknownRun_rejectsWithRunNotFound", async () => {
  await assert.rejects(optimizer.runStatus("no-such-run"), (e: RoadlessError) => {
    assert.ok(e instanceof RoadlessError);
    assert.equal(e.reason, "RUN_NOT_FOUND");
    assert.equal(e.domain, "roadless.dev");
    return true;
  });
});

test("createRun_otherSpecSameId_rejectsWithRunSpecConflict", async () => {
  const other = { ...spec, variant: "OPTIMIZER_VARIANT_ADAMW" };
  await assert.rejects(optimizer.createRun("node-run", other), (e: RoadlessError) => e.reason === "RUN_SPEC_CONFLICT");
});

test("call_noServer_rejectsUnavailableAfterRetrying", async () => {
  const nowhere = new OptimizerClient("127.0.0.1:1", { retryForMs: 300, deadlineMs: 500 });
  await assert.rejects(nowhere.listRuns(), (e: RoadlessError) => e.retryable && e.code === 14);
  nowhere.close();
});
