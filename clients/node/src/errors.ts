// Typed errors: every non-OK status becomes a RoadlessError carrying the google.rpc.ErrorInfo
// reason ("RUN_NOT_FOUND", ...) and metadata the server attached (domain "roadless.dev").
import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";

// google.rpc.Status and google.rpc.ErrorInfo (googleapis), the two messages the trailer needs.
const rpc = protobuf.Root.fromJSON(<protobuf.INamespace>(<unknown>{
  nested: {
    google: {
      nested: {
        protobuf: { nested: { Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } } } },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "google.protobuf.Any", id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: "string", id: 1 },
                domain: { type: "string", id: 2 },
                metadata: { keyType: "string", type: "string", id: 3 },
              },
            },
          },
        },
      },
    },
  },
}));
const Status = rpc.lookupType("google.rpc.Status");
const ErrorInfo = rpc.lookupType("google.rpc.ErrorInfo");

export class RoadlessError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    /** The ErrorInfo reason without the ERROR_REASON_ prefix; "" when none came. */
    readonly reason: string,
    readonly metadata: Record<string, string>,
    readonly domain: string,
  ) {
    super(`${grpc.status[code]} ${reason || "-"}: ${details}`);
    this.name = "RoadlessError";
  }

  /** True when the same call may simply be retried with backoff. */
  get retryable(): boolean {
    return this.code === grpc.status.UNAVAILABLE;
  }
}

export function fromServiceError(e: grpc.ServiceError): RoadlessError {
  let reason = "";
  let domain = "";
  let metadata: Record<string, string> = {};
  const bins = e.metadata?.get("grpc-status-details-bin") ?? [];
  for (const bin of bins) {
    const status = Status.decode(new Uint8Array(bin as Buffer)) as unknown as { details: { type_url: string; value: Uint8Array }[] };
    for (const d of status.details ?? []) {
      if (d.type_url.endsWith("/google.rpc.ErrorInfo")) {
        const info = ErrorInfo.decode(d.value) as unknown as { reason: string; domain: string; metadata: Record<string, string> };
        reason = (info.reason ?? "").replace(/^ERROR_REASON_/, "");
        domain = info.domain ?? "";
        metadata = { ...(info.metadata ?? {}) };
      }
    }
  }
  return new RoadlessError(e.code, e.details, reason, metadata, domain);
}
