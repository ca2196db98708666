// Roadless control plane from Node, on @grpc/grpc-js: create a run, its status, update
// hyperparameters, parameters at x, save and list checkpoints. The messages come from the
// project's protos (proto/src/main/proto), loaded at run time: there is no second copy.
//
// Every call has a deadline; UNAVAILABLE is retried with jittered exponential backoff (every
// call used here is safe to retry); any other failure rejects with a RoadlessError.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as path from "path";
import { Credentials, callMetadata, channelCredentials, resolveCredentials } from "./credentials";
import { RoadlessError, fromServiceError } from "./errors";

export { RoadlessError } from "./errors";
export { Credentials, isLoopback, resolveCredentials, security } from "./credentials";

/**
 * Deadlines and retries, and how to reach the server (see credentials.ts): `token` (else
 * ROADLESS_TOKEN) goes as `authorization: Bearer <token>` on every call; `tlsCaFile`, and
 * `tlsCertFile` with `tlsKeyFile` for mutual TLS, select TLS; `plaintext: true` asks for
 * cleartext. Without TLS settings a loopback target is plaintext, any other TLS with the system's
 * roots.
 */
export interface ClientOptions extends Credentials {
  deadlineMs?: number;
  retryForMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

type Timing = Required<Pick<ClientOptions, "deadlineMs" | "retryForMs" | "initialBackoffMs" | "maxBackoffMs">>;
const DEFAULTS: Timing = { deadlineMs: 60_000, retryForMs: 60_000, initialBackoffMs: 50, maxBackoffMs: 2_000 };

/** The repository's proto root; override with ROADLESS_PROTO_DIR. */
export function protoDir(): string {
  return process.env.ROADLESS_PROTO_DIR ?? path.resolve(__dirname, "../../../../proto/src/main/proto");
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

function load(): Any {
  const dir = protoDir();
  const def = protoLoader.loadSync(
    ["roadless/optimizer/v1/optimizer_service.proto", "roadless/checkpoint/v1/checkpoint_service.proto"],
    { includeDirs: [dir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(def);
}

let packages: Any;
function roadless(): Any {
  packages ??= load();
  return packages.roadless;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

abstract class Base {
  protected readonly options: Timing;
  protected readonly credentials: Credentials;
  protected abstract readonly stub: grpc.Client;

  constructor(options: ClientOptions = {}) {
    const { token, tlsCaFile, tlsCertFile, tlsKeyFile, plaintext, ...timing } = options;
    this.options = { ...DEFAULTS, ...timing };
    this.credentials = resolveCredentials({ token, tlsCaFile, tlsCertFile, tlsKeyFile, plaintext });
  }

  /** The channel credentials for `target` under this client's settings. */
  protected channel(target: string): grpc.ChannelCredentials {
    return channelCredentials(target, this.credentials);
  }

  /** Every call's metadata (the bearer token, if any). */
  protected metadata(): grpc.Metadata {
    return callMetadata(this.credentials);
  }

  /** One unary call with a deadline, retrying UNAVAILABLE with backoff. */
  protected async call<T>(method: string, request: object): Promise<T> {
    const giveUp = Date.now() + this.options.retryForMs;
    let backoff = this.options.initialBackoffMs;
    for (;;) {
      try {
        return await new Promise<T>((resolve, reject) => {
          const deadline = new Date(Date.now() + this.options.deadlineMs);
          (this.stub as Any)[method](request, this.metadata(), { deadline }, (e: grpc.ServiceError | null, r: T) => (e ? reject(fromServiceError(e)) : resolve(r)));
        });
      } catch (e) {
        const err = e as RoadlessError;
        if (!err.retryable || Date.now() + backoff > giveUp) throw err;
        await sleep(backoff * (0.5 + Math.random() / 2));
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
  }

  close(): void {
    this.stub.close();
  }
}

export type Sequence = "SEQUENCE_TRAIN" | "SEQUENCE_EVAL" | "SEQUENCE_BASE";

/** roadless.optimizer.v1.OptimizerService: runs, status, hyperparameters, parameters. */
export class OptimizerClient extends Base {
  protected readonly stub: grpc.Client;

  constructor(target: string, options?: ClientOptions) {
    super(options);
    this.stub = new (roadless().optimizer.v1.OptimizerService)(target, this.channel(target));
  }

  /** CreateRun (idempotent): {created, status}. `spec` is a roadless.optimizer.v1.RunSpec object. */
  createRun(runId: string, spec: object): Promise<Any> {
    return this.call("CreateRun", { run_id: runId, spec });
  }

  async runStatus(runId: string): Promise<Any> {
    return ((await this.call("GetRunStatus", { run_id: runId })) as Any).status;
  }

  async listRuns(): Promise<string[]> {
    return ((await this.call("ListRuns", {})) as Any).run_ids;
  }

  /**
   * Changes a group's hyperparameters from the next step on; returns the group's status. With
   * expectedStep (also 0) the change applies only while the run is at that step (retry-safe).
   */
  async updateHyperparameters(runId: string, group: string, hyperparameters: object, expectedStep?: number): Promise<Any> {
    const request: Any = { run_id: runId, group, hyperparameters };
    if (expectedStep !== undefined) request.expected_step = expectedStep;
    const r: Any = await this.call("UpdateHyperparameters", request);
    return r.group;
  }

  /** Uploads every tensor's initial float32 values, in one stream (small runs). */
  uploadInitialValues(runId: string, tensors: Map<string, Float32Array>): Promise<Any> {
    return new Promise((resolve, reject) => {
      const call = (this.stub as Any).UploadInitialValues(this.metadata(), { deadline: new Date(Date.now() + this.options.deadlineMs) }, (e: grpc.ServiceError | null, r: Any) =>
        e ? reject(fromServiceError(e)) : resolve(r),
      );
      call.write({ header: { run_id: runId } });
      let total = 0;
      for (const [name, values] of tensors) {
        call.write({ chunk: { name, element_offset: 0, dtype: "DATA_TYPE_FLOAT32", data: Buffer.from(values.buffer, values.byteOffset, values.byteLength) } });
        total += values.length;
      }
      call.write({ commit: { total_elements: total } });
      call.end();
    });
  }

  /** Every tensor of one sequence (x by default) from one step: {step, tensors}. */
  async parameters(runId: string, sequence: Sequence = "SEQUENCE_EVAL", minStep = 0): Promise<{ step: number; tensors: Map<string, Float32Array> }> {
    const giveUp = Date.now() + this.options.retryForMs;
    let backoff = this.options.initialBackoffMs;
    for (;;) {
      try {
        return await this.readParameters(runId, sequence, minStep);
      } catch (e) {
        const err = e as RoadlessError;
        if (!err.retryable || Date.now() + backoff > giveUp) throw err;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
  }

  private readParameters(runId: string, sequence: Sequence, minStep: number): Promise<{ step: number; tensors: Map<string, Float32Array> }> {
    return new Promise((resolve, reject) => {
      const tensors = new Map<string, Float32Array>();
      let step = -1;
      const stream = (this.stub as Any).GetParameters(
        { run_id: runId, sequence, min_step: minStep },
        this.metadata(),
        { deadline: new Date(Date.now() + this.options.deadlineMs) },
      );
      stream.on("data", (m: Any) => {
        if (m.header) {
          step = Number(m.header.step);
          for (const t of m.header.tensors) {
            tensors.set(t.name, new Float32Array(t.shape.reduce((a: number, d: string) => a * Number(d), 1)));
          }
        } else if (m.chunk) {
          const bytes: Buffer = m.chunk.data;
          const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          tensors.get(m.chunk.name)!.set(values, Number(m.chunk.element_offset));
        }
      });
      stream.on("error", (e: grpc.ServiceError) => reject(fromServiceError(e)));
      stream.on("end", () => resolve({ step, tensors }));
    });
  }
}

/** roadless.checkpoint.v1.CheckpointService: save and list checkpoints. */
export class CheckpointClient extends Base {
  protected readonly stub: grpc.Client;

  constructor(target: string, options?: ClientOptions) {
    super(options);
    this.stub = new (roadless().checkpoint.v1.CheckpointService)(target, this.channel(target));
  }

  /** Saves an eval checkpoint (x with BatchNorm statistics as `batchNorm` says); its CheckpointInfo. */
  async saveCheckpoint(runId: string, name: string, batchNorm: object = {}, minStep = 0): Promise<Any> {
    const r: Any = await this.call("SaveCheckpoint", { run_id: runId, name, batch_norm: batchNorm, min_step: minStep });
    return r.checkpoint;
  }

  /** Saves a state checkpoint (the run's full optimizer state, for exact resume). */
  async saveStateCheckpoint(runId: string, name: string): Promise<Any> {
    const r: Any = await this.call("SaveStateCheckpoint", { run_id: runId, name });
    return r.checkpoint;
  }

  async listCheckpoints(runId: string, kind = "CHECKPOINT_KIND_UNSPECIFIED"): Promise<Any[]> {
    const r: Any = await this.call("ListCheckpoints", { run_id: runId, kind });
    return r.checkpoints;
  }
}
