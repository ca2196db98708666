// Client credentials (issue 17): the token travels as `authorization: Bearer <token>` and TLS
// (and mutual TLS) is really used. A small grpc-js server in the test, with a CA and certificates
// made here by the openssl command, records what each call brought.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { OptimizerClient, RoadlessError, protoDir, resolveCredentials, security } from "../src/index";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "roadless-node-pki-"));
const file = (name: string) => path.join(dir, name);
const noRetry = { retryForMs: 0, deadlineMs: 5_000 };

interface Seen {
  authorization: string | undefined;
  // grpc-js reports "ssl" only for a verified client certificate (mutual TLS), else nothing.
  tls: string;
  clientCn: string | undefined;
}

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: "pipe" });
}

/** A key and a certificate signed by `ca` (or self-signed when ca is undefined). */
function certificate(name: string, cn: string, ca?: string, san?: string): void {
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`);
  const ext = file(`${name}.ext`);
  fs.writeFileSync(ext, (ca ? "basicConstraints=critical,CA:FALSE\n" : "basicConstraints=critical,CA:TRUE\n") + (san ? `subjectAltName=${san}\n` : ""));
  const sign = ca ? ["-CA", file(`${ca}.pem`), "-CAkey", file(`${ca}.key`), "-CAcreateserial"] : ["-signkey", file(`${name}.key`)];
  openssl("x509", "-req", "-in", file(`${name}.csr`), "-out", file(`${name}.pem`), "-days", "1", "-extfile", ext, ...sign);
}

let haveOpenssl = true;
before(() => {
  try {
    certificate("ca", "roadless node test ca");
    certificate("other-ca", "roadless node other ca");
    certificate("server", "localhost", "ca", "DNS:localhost,IP:127.0.0.1");
    certificate("client", "roadless-node-client", "ca");
  } catch (e) {
    if (process.env.CI) throw e;
    haveOpenssl = false;
  }
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Serves OptimizerService.ListRuns (answering ["seen"]) and records each call. */
async function server(security: "tls" | "mtls" | "plaintext"): Promise<{ port: number; seen: Seen[]; stop: () => void }> {
  const def = protoLoader.loadSync("roadless/optimizer/v1/optimizer_service.proto", { includeDirs: [protoDir()], keepCase: true, defaults: true, oneofs: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pkg = grpc.loadPackageDefinition(def) as any;
  const seen: Seen[] = [];
  const s = new grpc.Server();
  s.addService(pkg.roadless.optimizer.v1.OptimizerService.service, {
    ListRuns: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const auth = call.getAuthContext();
      seen.push({
        authorization: call.metadata.get("authorization")[0] as string | undefined,
        tls: auth.transportSecurityType ?? "none",
        clientCn: auth.sslPeerCertificate?.subject?.CN,
      });
      done(null, { run_ids: ["seen"] });
    },
  });
  const creds =
    security === "plaintext"
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(
          security === "mtls" ? fs.readFileSync(file("ca.pem")) : null,
          [{ private_key: fs.readFileSync(file("server.key")), cert_chain: fs.readFileSync(file("server.pem")) }],
          security === "mtls",
        );
  const port = await new Promise<number>((resolve, reject) => s.bindAsync("127.0.0.1:0", creds, (e, p) => (e ? reject(e) : resolve(p))));
  return { port, seen, stop: () => s.forceShutdown() };
}

test("tls_withToken_serverSeesTlsAndBearerHeader", async (t) => {
  if (!haveOpenssl) return t.skip("no openssl");
  const s = await server("tls");
  const c = new OptimizerClient(`localhost:${s.port}`, { ...noRetry, token: "s3cret-token", tlsCaFile: file("ca.pem") });
  const cleartext = new OptimizerClient(`localhost:${s.port}`, { ...noRetry, token: "s3cret-token", plaintext: true });
  try {
    assert.deepEqual(await c.listRuns(), ["seen"]);
    assert.equal(s.seen[0].authorization, "Bearer s3cret-token");
    assert.equal(s.seen[0].clientCn, undefined);
    // The server speaks only TLS: a cleartext client gets nowhere, so the call above was TLS.
    await assert.rejects(cleartext.listRuns(), (e: RoadlessError) => e.code === grpc.status.UNAVAILABLE);
    assert.equal(s.seen.length, 1);
  } finally {
    c.close();
    cleartext.close();
    s.stop();
  }
});

test("mutualTls_clientCertificatePresented_andRequired", async (t) => {
  if (!haveOpenssl) return t.skip("no openssl");
  const s = await server("mtls");
  const withCert = new OptimizerClient(`127.0.0.1:${s.port}`, {
    ...noRetry,
    token: "t",
    tlsCaFile: file("ca.pem"),
    tlsCertFile: file("client.pem"),
    tlsKeyFile: file("client.key"),
  });
  const without = new OptimizerClient(`127.0.0.1:${s.port}`, { ...noRetry, tlsCaFile: file("ca.pem") });
  try {
    assert.deepEqual(await withCert.listRuns(), ["seen"]);
    assert.equal(s.seen[0].clientCn, "roadless-node-client");
    assert.equal(s.seen[0].tls, "ssl");
    assert.equal(s.seen[0].authorization, "Bearer t");
    await assert.rejects(without.listRuns(), (e: RoadlessError) => e.code === grpc.status.UNAVAILABLE);
    assert.equal(s.seen.length, 1, "no call arrives without a client certificate");
  } finally {
    withCert.close();
    without.close();
    s.stop();
  }
});

test("tls_serverFromAnotherCa_refusedBeforeAnyCall", async (t) => {
  if (!haveOpenssl) return t.skip("no openssl");
  const s = await server("tls");
  const c = new OptimizerClient(`localhost:${s.port}`, { ...noRetry, token: "never-sent", tlsCaFile: file("other-ca.pem") });
  try {
    await assert.rejects(c.listRuns(), (e: RoadlessError) => e.code === grpc.status.UNAVAILABLE);
    assert.equal(s.seen.length, 0);
  } finally {
    c.close();
    s.stop();
  }
});

test("environmentToken_loopbackWithoutTlsSettings_plaintextAndTokenSent", async () => {
  const s = await server("plaintext");
  process.env.ROADLESS_TOKEN = "from-env";
  const c = new OptimizerClient(`127.0.0.1:${s.port}`, noRetry);
  delete process.env.ROADLESS_TOKEN;
  const anonymous = new OptimizerClient(`127.0.0.1:${s.port}`, noRetry);
  try {
    assert.deepEqual(await c.listRuns(), ["seen"]);
    assert.equal(s.seen[0].authorization, "Bearer from-env");
    assert.equal(s.seen[0].tls, "none");
    await anonymous.listRuns();
    assert.equal(s.seen[1].authorization, undefined);
  } finally {
    c.close();
    anonymous.close();
    s.stop();
  }
});

test("security_plaintextOnlyWhenExplicitOrLoopback_contradictionsRefused", () => {
  const none = resolveCredentials({}, {});
  assert.equal(security("localhost:50051", none), "plaintext");
  assert.equal(security("127.0.0.1:50051", none), "plaintext");
  assert.equal(security("[::1]:50051", none), "plaintext");
  assert.equal(security("unix:/tmp/roadless.sock", none), "plaintext");
  assert.equal(security("optimizer:50051", none), "tls-system-roots");
  assert.equal(security("dns:///optimizer.roadless.svc:50051", none), "tls-system-roots");
  assert.equal(security("10.0.0.7:50051", none), "tls-system-roots");
  assert.equal(security("optimizer:50051", resolveCredentials({ plaintext: true }, {})), "plaintext");
  assert.equal(security("optimizer:50051", resolveCredentials({}, { ROADLESS_PLAINTEXT: "1" })), "plaintext");
  assert.equal(security("localhost:50051", resolveCredentials({ tlsCaFile: "ca.pem" }, {})), "tls");
  assert.throws(() => resolveCredentials({ tlsCertFile: "c.pem" }, {}));
  assert.throws(() => resolveCredentials({ plaintext: true, tlsCaFile: "ca.pem" }, {}));
  assert.throws(() => resolveCredentials({ token: "two words" }, {}));
});
