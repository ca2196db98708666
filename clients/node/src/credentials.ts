// How a client reaches a Roadless server: TLS (optionally mutual) and a bearer token. The same
// contract as the Python client (roadless.credentials):
//
// - token (else ROADLESS_TOKEN) is sent on every call as the metadata `authorization: Bearer <token>`;
// - tlsCaFile (else ROADLESS_TLS_CA_FILE) verifies the server's certificate; tlsCertFile and
//   tlsKeyFile (else ROADLESS_TLS_CERT_FILE / ROADLESS_TLS_KEY_FILE), always together, are this
//   client's certificate chain and key for mutual TLS. Any of them selects TLS;
// - plaintext only when asked for (plaintext: true or ROADLESS_PLAINTEXT=1), or when no TLS
//   setting is given and the target is on this machine (localhost, 127.x, ::1, unix:). Any other
//   target without TLS settings gets TLS verified against the system's roots.
import * as grpc from "@grpc/grpc-js";
import * as fs from "fs";

export interface Credentials {
  token?: string;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  plaintext?: boolean;
}

export type Security = "tls" | "tls-system-roots" | "plaintext";

const TRUE = ["1", "true", "yes"];

/** Arguments win over the environment; throws on a contradiction. */
export function resolveCredentials(given: Credentials = {}, env: NodeJS.ProcessEnv = process.env): Credentials {
  const s: Credentials = {
    token: given.token ?? (env.ROADLESS_TOKEN || undefined),
    tlsCaFile: given.tlsCaFile || env.ROADLESS_TLS_CA_FILE || undefined,
    tlsCertFile: given.tlsCertFile || env.ROADLESS_TLS_CERT_FILE || undefined,
    tlsKeyFile: given.tlsKeyFile || env.ROADLESS_TLS_KEY_FILE || undefined,
    plaintext: given.plaintext ?? TRUE.includes((env.ROADLESS_PLAINTEXT ?? "").trim().toLowerCase()),
  };
  if ((s.tlsCertFile === undefined) !== (s.tlsKeyFile === undefined)) {
    throw new Error("tlsCertFile and tlsKeyFile go together (mutual TLS)");
  }
  if (s.plaintext && usesTls(s)) throw new Error("plaintext: true contradicts the TLS settings given");
  if (s.token !== undefined && !/^[\x21-\x7e]+$/.test(s.token)) {
    throw new Error("token must be non-empty printable ASCII without spaces");
  }
  return s;
}

function usesTls(s: Credentials): boolean {
  return Boolean(s.tlsCaFile || s.tlsCertFile);
}

/** True for targets on this machine: localhost, 127.0.0.0/8, ::1 and unix sockets. */
export function isLoopback(target: string): boolean {
  let t = target;
  for (const scheme of ["dns:///", "dns:", "ipv4:", "ipv6:"]) {
    if (t.startsWith(scheme)) {
      t = t.slice(scheme.length);
      break;
    }
  }
  if (t.startsWith("unix:") || t.startsWith("unix-abstract:")) return true;
  let host: string;
  if (t.startsWith("[")) host = t.slice(1, t.indexOf("]"));
  else if (t.split(":").length === 2) host = t.split(":")[0];
  else host = t;
  host = host.toLowerCase();
  return host === "localhost" || host === "ip6-localhost" || host === "::1" || host.startsWith("127.");
}

export function security(target: string, s: Credentials): Security {
  if (usesTls(s)) return "tls";
  if (s.plaintext || isLoopback(target)) return "plaintext";
  return "tls-system-roots";
}

/** The channel credentials for `target`, as security() says. */
export function channelCredentials(target: string, s: Credentials): grpc.ChannelCredentials {
  switch (security(target, s)) {
    case "plaintext":
      if (s.token && !isLoopback(target)) process.emitWarning(`the token for ${target} travels in cleartext (plaintext: true)`);
      return grpc.credentials.createInsecure();
    case "tls":
      return grpc.credentials.createSsl(
        s.tlsCaFile ? fs.readFileSync(s.tlsCaFile) : null,
        s.tlsKeyFile ? fs.readFileSync(s.tlsKeyFile) : null,
        s.tlsCertFile ? fs.readFileSync(s.tlsCertFile) : null,
      );
    default:
      return grpc.credentials.createSsl();
  }
}

/** The call metadata: `authorization: Bearer <token>` when there is a token. */
export function callMetadata(s: Credentials): grpc.Metadata {
  const m = new grpc.Metadata();
  if (s.token) m.set("authorization", `Bearer ${s.token}`);
  return m;
}
