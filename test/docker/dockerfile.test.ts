import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { curveKeyPair } from "zeromq";
import { PACKAGE_ROOT, resolvePython } from "../../ts/launcher/python.js";
import { connectWorker } from "../../ts/launcher/spawn.js";
import { HandshakeError, TimeoutError, TransportError } from "../../ts/protocol/errors.js";

const dockerfile = readFileSync(join(PACKAGE_ROOT, "Dockerfile"), "utf8");
const pyproject = readFileSync(join(PACKAGE_ROOT, "py", "pyproject.toml"), "utf8");
const python = resolvePython().path;

/** Numeric parts of a version, e.g. "2.7.1" -> [2, 7, 1]. */
function version(text: string): number[] {
  return text.split(".").map(Number);
}

function atLeast(have: number[], floor: number[]): boolean {
  for (let i = 0; i < Math.max(have.length, floor.length); i++) {
    const a = have[i] ?? 0;
    const b = floor[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** The image's environment with `/keys` and `/workspace` moved to private folders. */
function imageEnv(keysDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of dockerfile.matchAll(/^\s*(?:ENV\s+)?(ADVMOE_[A-Z_]+)=(\S+?)\s*\\?$/gm)) {
    env[m[1]!] = m[2]!.replace(/^\/keys/, keysDir);
  }
  return { ...env, ADVMOE_SCHEMA_DIR: join(PACKAGE_ROOT, "schemas"), PYTHONPATH: join(PACKAGE_ROOT, "py") };
}

function entrypointArgs(): string[] {
  const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
  expect(entrypoint.slice(0, 3)).toEqual(["python", "-m", "advmoe_worker"]);
  // Same command, but on a free loopback port, a private workspace and the project's interpreter.
  return entrypoint
    .slice(1)
    .map((a) =>
      a.replace("0.0.0.0:5555", "127.0.0.1:0").replace("/workspace", mkdtempSync(join(tmpdir(), "advmoe-ws-"))),
    );
}

describe("Dockerfile", () => {
  it("copies only files that exist", () => {
    const sources = [...dockerfile.matchAll(/^COPY\s+(.+)\s+\S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(sources.length).toBeGreaterThan(2);
    for (const source of sources) expect(existsSync(join(PACKAGE_ROOT, source)), source).toBe(true);
  });

  it("points the worker at the schemas it copies", () => {
    const schemaDir = /ADVMOE_SCHEMA_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(dockerfile).toContain(`COPY schemas ${schemaDir}`);
  });

  it("starts from an official PyTorch CUDA image at or above the worker's torch floor", () => {
    const floor = /"torch>=([\d.]+)"/.exec(pyproject)?.[1];
    expect(floor, "py/pyproject.toml names a torch floor").toBeDefined();
    const base = /^FROM pytorch\/pytorch:(\d+\.\d+\.\d+)-cuda[\d.]+-cudnn\d+-(runtime|devel)$/m.exec(dockerfile);
    expect(base, "FROM pytorch/pytorch:<torch>-cuda<x>-cudnn<y>-runtime").not.toBeNull();
    expect(atLeast(version(base![1]!), version(floor!)), `base torch ${base![1]} >= floor ${floor}`).toBe(true);
  });

  it("checks its health with a signed request, not a bare connect", () => {
    expect(dockerfile).toMatch(/^\s*CMD \["python", "-m", "advmoe_worker\.health"/m);
  });

  describe("its entrypoint, run outside Docker", () => {
    let keysDir: string;
    let serverPublic: string;
    beforeAll(async () => {
      keysDir = mkdtempSync(join(tmpdir(), "advmoe-keys-"));
      await execa(python, ["-m", "advmoe_worker.keys", keysDir], {
        env: { PYTHONPATH: join(PACKAGE_ROOT, "py") },
      });
      serverPublic = readFileSync(join(keysDir, "server.public"), "utf8").trim();
    });

    it("refuses to start without a signing key, and without a CURVE key", async () => {
      const env = imageEnv(keysDir);
      const noKey = await execa(python, entrypointArgs(), {
        env: { ...env, ADVMOE_KEY_FILE: join(keysDir, "missing") },
        extendEnv: false,
        reject: false,
      });
      expect(noKey.exitCode).not.toBe(0);
      expect(noKey.stderr).toMatch(/cannot read .*missing/);
      const noCurve = await execa(python, entrypointArgs(), {
        env: { ...env, ADVMOE_CURVE_SECRET_KEY_FILE: "" },
        extendEnv: false,
        reject: false,
      });
      expect(noCurve.exitCode).not.toBe(0);
      expect(noCurve.stderr).toMatch(/--allow-remote needs CURVE encryption/);
    });

    describe("serving", () => {
      let child: ReturnType<typeof execa>;
      let endpoint: string;
      let key: string;
      beforeAll(async () => {
        key = readFileSync(join(keysDir, "signing.key"), "utf8").trim();
        child = execa(python, entrypointArgs(), { env: imageEnv(keysDir), extendEnv: false, reject: false });
        const line = await new Promise<string>((resolve) =>
          createInterface({ input: child.stdout! }).on("line", (l) => l.startsWith("ADVMOE_READY") && resolve(l)),
        );
        const ready = JSON.parse(/^ADVMOE_READY (\{.*\}) [0-9a-f]{64}$/.exec(line)![1]!);
        expect(ready.curve_public_key).toBe(serverPublic);
        endpoint = ready.endpoint;
      });
      afterAll(async () => {
        child.kill("SIGTERM");
        await child;
      });

      it("answers over CURVE with the worker's public key", async () => {
        const worker = await connectWorker(endpoint, { key, curve: { serverKey: serverPublic } });
        const info = await worker.info();
        expect(info.workspace.startsWith(tmpdir())).toBe(true);
        // A client key pair of its own works too.
        const pair = curveKeyPair();
        const again = await connectWorker(endpoint, { key, curve: { serverKey: serverPublic, ...pair } });
        expect((await again.info()).pid).toBe(info.pid);
        again.close();
        worker.close();
      });

      it("a client with the wrong server key, or none, gets HandshakeError, not a hang", async () => {
        const wrong = curveKeyPair().publicKey;
        const err = await connectWorker(endpoint, { key, curve: { serverKey: wrong } }).catch((e) => e);
        expect(err).toBeInstanceOf(HandshakeError);
        expect(err.code).toBe("handshake_failed");
        expect(err.message).toMatch(/public key/);
        // Without encryption, the default client learns from the greeting that the worker
        // wants another mechanism and says so; the native one is never answered and times out.
        const plain = await connectWorker(endpoint, { key, heartbeatTimeoutMs: 1500 }).catch((e) => e);
        expect(plain).toBeInstanceOf(TransportError);
        expect(plain.message).toMatch(/CURVE/);
        const native = await connectWorker(endpoint, { key, heartbeatTimeoutMs: 1500, transport: "zeromq" }).catch(
          (e) => e,
        );
        expect(native).toBeInstanceOf(TimeoutError);
      });

      it("refuses malformed CURVE keys before connecting, naming the option", async () => {
        const err = await connectWorker(endpoint, { key, curve: { serverKey: "abc" } }).catch((e) => e);
        expect(err).toBeInstanceOf(TypeError);
        expect(err.message).toMatch(/curve\.serverKey must be a Z85 key of 40 characters/);
        const half = await connectWorker(endpoint, {
          key,
          curve: { serverKey: serverPublic, publicKey: serverPublic },
        }).catch((e) => e);
        expect(half.message).toMatch(/both publicKey and secretKey/);
      });

      it("passes the image's healthcheck, which fails with a wrong key", async () => {
        const port = new URL(endpoint.replace("tcp://", "http://")).port;
        const cmd = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
        const args = cmd.slice(1).map((a) => a.replace(":5555", `:${port}`));
        const ok = await execa(python, args, { env: imageEnv(keysDir), extendEnv: false, reject: false });
        expect(ok.stderr).toBe("");
        expect(ok.exitCode).toBe(0);
        expect(ok.stdout).toMatch(/^healthy: pid \d+/);
        const bad = await execa(python, [...args, "--timeout", "2"], {
          env: { ...imageEnv(keysDir), ADVMOE_KEY: "cd".repeat(32) },
          extendEnv: false,
          reject: false,
        });
        expect(bad.exitCode).not.toBe(0);
        expect(bad.stderr).toMatch(/^unhealthy/);
      });
    });
  });
});
