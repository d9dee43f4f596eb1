// The SDK under Deno, through a real worker: `npm test` runs this with `deno test`
// (scripts/check.sh). It imports the built package by its name, as a Deno user does.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CancelledError,
  connectWorker,
  type DataSpec,
  defaultTransport,
  LaunchError,
  type ModelSpec,
  type SpawnedWorker,
  spawnWorker,
  TimeoutError,
  type TrainerSpec,
  TransportError,
  tensor,
  WorkerDiedError,
} from "advmoe";

const MiB = 1 << 20;
const FLAGS = ["--allow-run", "--allow-net", "--allow-read", "--allow-write", "--allow-env"];
const HERE = new URL(".", import.meta.url).pathname;
const ROOT = join(HERE, "..", "..");

// Workers and sockets outlive single tests on purpose (one worker serves many steps).
const options = { sanitizeOps: false, sanitizeResources: false };

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

for (const socket of ["ipc", "tcp"] as const) {
  Deno.test({ name: `a spawned worker over ${socket}`, ...options }, async (t) => {
    await using worker = await spawnWorker({ socket, maxMessageBytes: 80 * MiB });

    await t.step("sends tensors as frames: without --allow-all, Deno keeps /dev/shm out of reach", () => {
      assert.equal(worker.sharedMemoryDir, undefined);
      assert.equal(worker.connection.sharedMemory, undefined);
    });

    await t.step("uses the pure-TypeScript transport and answers info", async () => {
      const info = await worker.info();
      assert.equal(info.protocol, 1);
      assert.equal(info.executable, worker.python.path);
      assert.ok(worker.endpoint.startsWith(`${socket}://`));
    });

    await t.step("echoes a 64 MiB float32 tensor bit-exactly", async () => {
      const data = new Float32Array((64 * MiB) / 4);
      const bytes = new Uint8Array(data.buffer);
      for (let offset = 0; offset < bytes.length; offset += 65_536) bytes.set(randomBytes(65_536), offset);
      const back = await worker.echo({ x: tensor(data, [data.length / 1024, 1024]) });
      assert.deepEqual(back.x!.shape, [data.length / 1024, 1024]);
      assert.ok(back.x!.data instanceof Float32Array);
      assert.ok(sameBytes(back.x!.data, data));
    });

    await t.step("answers 5,000 sequential round trips", async () => {
      for (let i = 0; i < 5000; i++) {
        const reply = await worker.request("echo", { note: `r${i}` });
        if (reply.result.note !== `r${i}`) assert.fail(`round trip ${i} got ${reply.result.note}`);
      }
    });

    await t.step("answers 1,000 pipelined requests, each with its own reply", async () => {
      const calls = Array.from({ length: 1000 }, (_, i) =>
        worker.request("echo", { note: `n${i}` }, { tensors: { i: tensor(new Int32Array([i]), [1]) } }),
      );
      assert.ok(worker.connection.inFlight > 1);
      const replies = await Promise.all(calls);
      replies.forEach((reply, i) => {
        assert.equal(reply.result.note, `n${i}`);
        assert.equal(reply.tensors.i!.data[0], i);
      });
    });

    await t.step("streams events before the reply", async () => {
      const call = worker.sleep({ seconds: 0.2, tick: 0.05 });
      const events = [];
      for await (const e of call) events.push(e);
      const result = await call;
      assert.equal(events.length, result.ticks);
      assert.equal(events.at(-1)!.data.done, 1);
    });

    await t.step("cancels a long request through an AbortSignal and keeps serving", async () => {
      const controller = new AbortController();
      const call = worker.sleep({ seconds: 60, tick: 0.02 }, { signal: controller.signal });
      await call[Symbol.asyncIterator]().next(); // running on the worker now
      controller.abort();
      await assert.rejects(call.reply, CancelledError);
      const after = await worker.request("sleep", { seconds: 0.01 }, { timeoutMs: 10_000 });
      assert.ok(after.result.ticks > 0);
    });

    await t.step("times out a call and cancels it on the worker", async () => {
      await assert.rejects(worker.sleep({ seconds: 30, tick: 0.02 }, { timeoutMs: 300 }).reply, TimeoutError);
      const after = await worker.request("sleep", { seconds: 0.01 }, { timeoutMs: 10_000 });
      assert.ok(after.result.ticks > 0);
    });
  });
}

Deno.test({ name: "AdvMoE training steps and an evaluation", ...options }, async () => {
  const workspace = mkdtempSync(join(tmpdir(), "advmoe-deno-train-"));
  await using worker = await spawnWorker({ workspace, threads: 1 });
  const dataSpec: DataSpec = {
    kind: "synthetic",
    num_classes: 3,
    size: 8,
    channels: 3,
    train_size: 96,
    test_size: 48,
    seed: 3,
  };
  const modelSpec: ModelSpec = {
    arch: "resnet18",
    width: 0.0625,
    ratio: 0.5,
    input_size: 8,
    num_classes: 3,
    seed: 5,
    moe: { experts: 2, router_width: 0.25 },
  };
  const trainerSpec: TrainerSpec = { method: "advmoe", epochs: 3, batch_size: 16, attack: { steps: 1 }, seed: 11 };
  const data = await worker.createDataset(dataSpec);
  const model = await worker.createModel(modelSpec);
  const trainer = await worker.createTrainer(model, data, trainerSpec);
  const router = await trainer.step({ phase: "router" });
  const expert = await trainer.step({ phase: "expert" });
  assert.equal(router.phase, "router");
  assert.equal(expert.phase, "expert");
  assert.ok(Number.isFinite(router.loss) && Number.isFinite(expert.loss));
  const call = worker.evaluate(model, data, { attacks: [{ name: "pgd", steps: 2 }], batch_size: 16 });
  let progress = 0;
  for await (const e of call) if (e.event === "progress") progress++;
  const report = await call;
  assert.equal(report.samples, 48);
  assert.ok(progress > 0);
  assert.ok(report.attacks[0]!.robust_accuracy <= report.summary.sa);
});

Deno.test(
  { name: "a killed worker rejects the pending call with WorkerDiedError within 3 s", ...options },
  async () => {
    const worker = await spawnWorker();
    const pending = worker.sleep({ seconds: 60 });
    await pending[Symbol.asyncIterator]().next();
    const killedAt = Date.now();
    worker.kill("SIGKILL");
    const err = await pending.reply.catch((e: unknown) => e);
    assert.ok(err instanceof WorkerDiedError, `got ${err}`);
    assert.equal(err.signal, "SIGKILL");
    assert.ok(Date.now() - killedAt < 3000, `took ${Date.now() - killedAt} ms`);
    await assert.rejects(worker.info(), WorkerDiedError);
    await worker.close();
  },
);

Deno.test({ name: "a silent (stopped) worker is detected by missed heartbeats", ...options }, async () => {
  const worker = await spawnWorker({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1000 });
  try {
    const pending = worker.sleep({ seconds: 60 });
    await pending[Symbol.asyncIterator]().next();
    worker.kill("SIGSTOP");
    const err = await pending.reply.catch((e: unknown) => e);
    assert.ok(err instanceof WorkerDiedError, `got ${err}`);
    assert.match(err.message, /heartbeat timeout/);
  } finally {
    worker.kill("SIGCONT");
    worker.kill("SIGKILL");
    await worker.exited;
  }
});

Deno.test({ name: "`await using` stops the worker and removes its socket folder", ...options }, async () => {
  let worker: SpawnedWorker;
  {
    await using scoped = await spawnWorker();
    worker = scoped;
    await worker.info();
  }
  assert.deepEqual(await worker.exited, { exitCode: 0, signal: null });
  assert.equal(existsSync(worker.endpoint.slice("ipc://".length)), false);
});

Deno.test({ name: "connectWorker reaches a worker started on its own", ...options }, async () => {
  const key = randomBytes(32).toString("hex");
  const python = join(ROOT, ".venv", "bin", "python");
  const child = new Deno.Command(python, {
    args: ["-m", "advmoe_worker", "--bind", "tcp://127.0.0.1:0"],
    env: { ADVMOE_KEY: key, PYTHONPATH: join(ROOT, "py"), PYTHONUNBUFFERED: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  const endpoint = JSON.parse(/^ADVMOE_READY (\{.*\}) /.exec(text)![1]!).endpoint as string;
  const worker = await connectWorker(endpoint, { key });
  assert.ok(worker.connection instanceof Object);
  assert.equal((await worker.info()).protocol, 1);
  await worker.shutdown();
  assert.equal((await child.status).code, 0);
  reader.releaseLock();
  await child.stdout.cancel().catch(() => undefined);
});

/** Runs a Deno script (in this folder) with the given flags; returns its status and output. */
async function runDeno(script: string, flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, join(HERE, script)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("a missing permission is named in a LaunchError", async () => {
  const { code, stdout } = await runDeno(
    "missing-permission.ts",
    FLAGS.filter((f) => f !== "--allow-run"),
  );
  assert.equal(code, 0, stdout);
  assert.match(
    stdout,
    /LaunchError: spawnWorker needs Deno permissions that were not granted \(run .*python\): run deno with --allow-run/,
  );
  assert.ok(LaunchError);
});

Deno.test("with --allow-all, large tensors travel through /dev/shm, signed with HMAC-SHA256", async () => {
  const { code, stdout, stderr } = await runDeno("shared-memory.ts", ["--allow-all"]);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)!), {
    mac: "hmac-sha256",
    same: true,
    left: 0,
    existed: true,
    removed: true,
  });
});

for (const how of ["SIGKILL", "exit"]) {
  Deno.test(
    { name: `a worker whose Deno parent dies (${how}) exits and removes its socket and segment folders`, ...options },
    async () => {
      const child = new Deno.Command(Deno.execPath(), {
        // --allow-all: the worker then shares a segment folder in /dev/shm too.
        args: ["run", "--allow-all", join(HERE, "orphan.ts"), how],
        cwd: ROOT,
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) text += (await reader.read()).value ?? "";
      const { pid, endpoint, shm } = JSON.parse(text.trim()) as { pid: number; endpoint: string; shm: string };
      assert.equal(isFolder(shm), true, "the worker has a segment folder");
      if (how === "SIGKILL") child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel().catch(() => undefined);
      try {
        const started = Date.now();
        while (isAlive(pid) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
        assert.equal(isAlive(pid), false, `worker ${pid} still runs 10 s after its parent left`);
        const folder = endpoint.slice("ipc://".length).replace(/\/worker\.sock$/, "");
        assert.equal(existsSync(folder), false, `${folder} was left behind`);
        assert.equal(isFolder(shm), false, `${shm} was left behind`);
      } finally {
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      }
    },
  );
}

/** Whether a folder exists, asked of `test -d`: Deno reads /dev/shm only with --allow-all. */
function isFolder(path: string): boolean {
  return new Deno.Command("test", { args: ["-d", path] }).outputSync().success;
}

/**
 * Whether `pid` runs; a zombie (exited, not yet reaped by a container's init) does not.
 * Asks `ps`: Deno reads /proc/<pid> only with --allow-all.
 */
function isAlive(pid: number): boolean {
  const out = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)], stdout: "piped" }).outputSync();
  const state = new TextDecoder().decode(out.stdout).trim();
  return state !== "" && !state.startsWith("Z");
}

Deno.test("the zmtp transport is the default under Deno, and the native addon is refused", async () => {
  assert.equal(defaultTransport(), "zmtp");
  const err = await spawnWorker({ transport: "zeromq" }).catch((e: unknown) => e);
  assert.ok(err instanceof TransportError, `got ${err}`);
  assert.equal(err.reason, "unsupported");
  assert.match(err.message, /500th receive/);
});
