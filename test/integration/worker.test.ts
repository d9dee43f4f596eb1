import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import { encode, PROTOCOL_VERSION } from "../../ts/protocol/codec.js";
import {
  BadMessageError,
  BadTensorError,
  CancelledError,
  InvalidSpecError,
  NotFoundError,
  ShuttingDownError,
  TimeoutError,
  TooLargeError,
  UnsupportedVersionError,
  WorkerClosedError,
  WorkerDiedError,
} from "../../ts/protocol/errors.js";
import { tensor } from "../../ts/protocol/tensor.js";
import { TRANSPORTS } from "./transports.js";

const MiB = 1 << 20;

const COMBINATIONS = TRANSPORTS.flatMap((transport) =>
  (["ipc", "tcp"] as const).map((socket) => ({ transport, socket })),
);

describe.each(COMBINATIONS)("a spawned worker over $socket with $transport", ({ transport, socket }) => {
  let worker: SpawnedWorker;
  beforeAll(async () => {
    // Frames only: this suite is about the socket path and its size limit
    // (shared-memory.test.ts covers segments).
    worker = await spawnWorker({ transport, socket, maxMessageBytes: 80 * MiB, sharedMemory: false });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("reports versions, devices and the interpreter it runs on", async () => {
    const info = await worker.info();
    expect(info.protocol).toBe(PROTOCOL_VERSION);
    expect(info.torch).toMatch(/^\d+\.\d+/);
    expect(info.devices[0]).toMatchObject({ name: "cpu", kind: "cpu" });
    expect(info.executable).toBe(worker.python.path);
    expect(info.cpu_threads).toBeGreaterThan(0);
    expect(worker.endpoint.startsWith(`${socket}://`)).toBe(true);
    if (socket === "tcp") expect(worker.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });

  it("echoes a 64 MiB float32 tensor bit-exactly", async () => {
    const data = new Float32Array((64 * MiB) / 4);
    const bytes = new Uint8Array(data.buffer);
    bytes.set(randomBytes(bytes.byteLength));
    const back = await worker.echo({ x: tensor(data, [data.length / 1024, 1024]) });
    expect(back.x!.shape).toEqual([data.length / 1024, 1024]);
    expect(
      Buffer.compare(Buffer.from(back.x!.data.buffer, back.x!.data.byteOffset, back.x!.data.byteLength), bytes),
    ).toBe(0);
  });

  it("answers 1,000 pipelined requests, each with its own reply", async () => {
    const calls = Array.from({ length: 1000 }, (_, i) =>
      worker.request("echo", { note: `n${i}` }, { tensors: { i: tensor(new Int32Array([i]), [1]) } }),
    );
    expect(worker.connection.inFlight).toBeGreaterThan(1);
    const replies = await Promise.all(calls);
    replies.forEach((reply, i) => {
      expect(reply.result.note).toBe(`n${i}`);
      expect(reply.tensors.i!.data[0]).toBe(i);
    });
  });

  it("streams progress events before the reply", async () => {
    const call = worker.sleep({ seconds: 0.2, tick: 0.05 });
    const events = [];
    for await (const e of call) events.push(e);
    const result = await call;
    expect(events.length).toBe(result.ticks);
    expect(events.map((e) => e.event)).toEqual(Array(result.ticks).fill("progress"));
    expect(events.at(-1)!.data.done).toBe(1);
  });

  it("cancels a long request through an AbortSignal and keeps serving", async () => {
    const controller = new AbortController();
    const call = worker.sleep({ seconds: 60, tick: 0.02 }, { signal: controller.signal });
    const iterator = call[Symbol.asyncIterator]();
    await iterator.next(); // running on the worker now
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(CancelledError);
    // The worker stopped the job at its next tick: a queued request runs right after.
    const after = worker.sleep({ seconds: 0.01, tick: 0.01 });
    expect((await after).ticks).toBeGreaterThan(0);
  });

  it("answers info while a long request computes; a timeout cancels on the worker", async () => {
    const controller = new AbortController();
    const long = worker.sleep({ seconds: 30, tick: 0.05 }, { signal: controller.signal });
    await long[Symbol.asyncIterator]().next();
    // info is served by the socket thread while the compute thread is busy.
    const info = await worker.info({ timeoutMs: 2000 });
    expect(info.stats.requests).toBeGreaterThan(0);
    controller.abort();
    await expect(long).rejects.toBeInstanceOf(CancelledError);
    await expect(worker.sleep({ seconds: 30, tick: 0.02 }, { timeoutMs: 300 })).rejects.toBeInstanceOf(TimeoutError);
    // Had the worker not stopped the timed-out request, this one would wait 30 s behind it.
    const after = await worker.request("sleep", { seconds: 0.01 }, { timeoutMs: 10_000 });
    expect(after.result.ticks).toBeGreaterThan(0);
  });

  describe("bad input gets a typed error and the worker serves on", () => {
    it("unknown method lists the known ones", async () => {
      const err = await worker.connection.call("no.such.method").catch((e) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.known).toContain("info");
    });

    it("params failing the schema name the field and the rule", async () => {
      const err = (await worker
        .request("sleep", { seconds: -1 } as never, { validate: false })
        .catch((e) => e)) as InvalidSpecError;
      expect(err).toBeInstanceOf(InvalidSpecError);
      expect(err.path).toBe("seconds");
      expect(err.rule).toBe("minimum");
      const extra = await worker.connection.call("sleep", { seconds: 1, sconds: 2 }).catch((e) => e);
      expect(extra.path).toBe("sconds");
      expect(extra.rule).toBe("additionalProperties");
    });

    it("the SDK checks params before sending, with the same error type", async () => {
      await expect(worker.request("sleep", { seconds: -1 } as never)).rejects.toBeInstanceOf(InvalidSpecError);
    });

    it("a tensor table inconsistent with the frames", async () => {
      const conn = worker.connection;
      const good = conn.frame(
        { kind: "request", id: 900_001, method: "echo", params: {} },
        { x: tensor(new Float32Array(4), [4]) },
      );
      // Same header, a frame of the wrong byte size, re-signed.
      const frames = [good[1]!, new Uint8Array(12)];
      const reply = waitForError(conn, 900_001);
      await conn.sendRaw([conn.sign(frames), ...frames]);
      const err = await reply;
      expect(err).toBeInstanceOf(BadTensorError);
      expect(err.message).toMatch(/needs 16/);
      // One tensor frame too many.
      const extra = conn.frame({ kind: "request", id: 900_002, method: "echo", params: {} });
      const frames2 = [extra[1]!, new Uint8Array(4)];
      const reply2 = waitForError(conn, 900_002);
      await conn.sendRaw([conn.sign(frames2), ...frames2]);
      expect(await reply2).toBeInstanceOf(BadTensorError);
    });

    it("a signed but malformed msgpack header, and an unsupported version", async () => {
      const before = (await worker.info()).stats;
      const garbage = [new Uint8Array([0xc1, 0xff, 0x00])];
      await worker.connection.sendRaw([worker.connection.sign(garbage), ...garbage]);
      const after = (await worker.info()).stats;
      expect(after.bad_messages).toBe(before.bad_messages + 1);
      const conn = worker.connection;
      const v2 = encode({
        v: 2,
        kind: "request",
        id: 900_003,
        session: "zz",
        seq: 1,
        ts: Date.now(),
        method: "info",
      } as never);
      const reply = waitForError(conn, 900_003);
      await conn.sendRaw([conn.sign(v2), ...v2]);
      expect(await reply).toBeInstanceOf(UnsupportedVersionError);
    });

    it("unsigned, badly signed and replayed messages are dropped, counted and never run", async () => {
      const conn = worker.connection;
      const before = (await worker.info()).stats;
      const frames = conn.frame({ kind: "request", id: 900_010, method: "shutdown", params: {} });
      await conn.sendRaw(frames.slice(1)); // no signature frame
      const bad = Buffer.from(frames[0]!);
      bad[5] = bad[5]! ^ 0xff;
      await conn.sendRaw([bad, ...frames.slice(1)]);
      await conn.sendRaw([randomBytes(33), ...frames.slice(1)]);
      const ok = conn.frame({ kind: "request", id: 900_011, method: "echo", params: { note: "once" } });
      await conn.sendRaw(ok);
      await conn.sendRaw(ok); // replay
      const after = (await worker.info()).stats;
      expect(after.dropped_unsigned - before.dropped_unsigned).toBe(3);
      expect(after.dropped_replay - before.dropped_replay).toBe(1);
      expect(conn.stats.orphans).toBeGreaterThanOrEqual(1); // the one valid echo reply
      expect((await worker.info()).pid).toBe(worker.pid); // shutdown never ran
    });

    it("a message over the size limit", async () => {
      // The client knows the limit from the ready line and refuses before sending, even a
      // single frame over it, which the worker's socket would drop unanswered.
      expect(worker.connection.maxMessageBytes).toBe(80 * MiB);
      const whole = tensor(new Uint8Array(81 * MiB), [81 * MiB]);
      const refused = await worker.echo({ a: whole }).catch((e) => e);
      expect(refused).toBeInstanceOf(TooLargeError);
      expect(refused.details).toMatchObject({ limit: 80 * MiB });
      expect(refused.details.bytes).toBeGreaterThan(81 * MiB);
      // A client that does not check: each frame within the limit, their sum over it; the
      // worker lets the bytes go as they arrive and answers.
      worker.connection.maxMessageBytes = 0;
      try {
        const half = tensor(new Uint8Array(41 * MiB), [41 * MiB]);
        const err = await worker.echo({ a: half, b: half }).catch((e) => e);
        expect(err).toBeInstanceOf(TooLargeError);
        expect(err.details.limit).toBe(80 * MiB);
      } finally {
        worker.connection.maxMessageBytes = 80 * MiB;
      }
    });

    it("a malformed-message fuzz of 2,000 messages leaves the worker answering", async () => {
      const conn = worker.connection;
      let state = 12345;
      const rand = (n: number) => {
        state = (state * 1103515245 + 12345) & 0x7fffffff;
        return state % n;
      };
      const valid = conn.frame(
        { kind: "request", id: 1, method: "echo", params: { note: "x" } },
        {
          x: tensor(new Float32Array([1, 2]), [2]),
        },
      );
      for (let i = 0; i < 2000; i++) {
        const mode = rand(4);
        let frames: Uint8Array[];
        if (mode === 0) {
          frames = Array.from({ length: rand(5) + 1 }, () => randomBytes(rand(64)));
        } else {
          const header = Buffer.from(valid[1]!);
          for (let k = 0; k <= rand(4); k++) header[rand(header.length)] = rand(256);
          const body = mode === 3 ? [header] : [header, ...valid.slice(2)];
          // Half of the mutants are re-signed so they reach the decoder and the validator.
          frames = mode === 1 ? [valid[0]!, ...body] : [conn.sign(body), ...body];
        }
        await conn.sendRaw(frames);
      }
      const info = await worker.info({ timeoutMs: 20_000 });
      expect(info.stats.received).toBeGreaterThan(2000);
      expect(info.stats.dropped_unsigned).toBeGreaterThan(400);
      const back = await worker.echo({ y: tensor(new Float64Array([3.5]), [1]) });
      expect(back.y!.data[0]).toBe(3.5);
    });
  });
});

function waitForError(conn: SpawnedWorker["connection"], id: number): Promise<Error> {
  return conn.awaitReply(id).then(
    () => new Error("expected an error reply"),
    (err: Error) => err,
  );
}

describe.each(TRANSPORTS)("worker lifecycle with %s", (transport) => {
  it("rejects pending calls within 3 s with WorkerDiedError when the worker is killed", async () => {
    const worker = await spawnWorker({ transport });
    const pending = worker.sleep({ seconds: 60 });
    await pending[Symbol.asyncIterator]().next();
    const killedAt = Date.now();
    worker.kill("SIGKILL");
    const err = await pending.catch((e) => e);
    expect(err).toBeInstanceOf(WorkerDiedError);
    expect(err.signal).toBe("SIGKILL");
    expect(Array.isArray(err.stderrTail)).toBe(true);
    expect(Date.now() - killedAt).toBeLessThan(3000);
    await expect(worker.info()).rejects.toBeInstanceOf(WorkerDiedError);
    await worker.close();
  });

  it("rejects pending calls with WorkerDiedError when heartbeats stop (a hung worker)", async () => {
    const worker = await spawnWorker({ transport, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1000 });
    try {
      const pending = worker.sleep({ seconds: 60 });
      await pending[Symbol.asyncIterator]().next();
      worker.kill("SIGSTOP"); // alive but silent: only the heartbeat can tell
      const err = await pending.catch((e) => e);
      expect(err).toBeInstanceOf(WorkerDiedError);
      expect(err.message).toMatch(/heartbeat timeout/);
    } finally {
      worker.kill("SIGCONT");
      worker.kill("SIGKILL");
      await worker.exited;
    }
  });

  it("answers shutdown, refuses work after it, and exits cleanly", async () => {
    const worker = await spawnWorker({ transport, socket: "tcp" });
    const queued = worker.sleep({ seconds: 30 });
    await queued[Symbol.asyncIterator]().next();
    await worker.shutdown();
    await expect(queued).rejects.toSatisfy((e) => e instanceof ShuttingDownError || e instanceof WorkerClosedError);
    await expect(worker.info()).rejects.toBeInstanceOf(WorkerClosedError);
    expect(await worker.exited).toEqual({ exitCode: 0, signal: null });
    await worker.close();
  });

  it("stops the worker when an `await using` scope ends", async () => {
    let exited: Promise<unknown>;
    {
      await using worker = await spawnWorker({ transport });
      exited = worker.exited;
      await worker.info();
    }
    expect(await exited).toEqual({ exitCode: 0, signal: null });
  });

  it("refuses messages of a kind a worker does not accept", async () => {
    await using worker = await spawnWorker({ transport });
    const conn = worker.connection;
    const frames = conn.frame({ kind: "reply", id: 900_020, result: {} });
    const reply = waitForError(conn, 900_020);
    await conn.sendRaw(frames);
    expect(await reply).toBeInstanceOf(BadMessageError);
  });
});
