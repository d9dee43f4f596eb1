// Tensors through shared memory (docs/protocol.md, Shared memory), through the wire:
// a spawned worker and its client exchange large tensors as segments in a private folder.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SharedMemory, sweepStale } from "../../ts/client/shared-memory.js";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import { BadTensorError, ProtocolError, TooLargeError } from "../../ts/protocol/errors.js";
import { tensor, toNumbers } from "../../ts/protocol/tensor.js";
import { TRANSPORTS } from "./transports.js";

const MiB = 1 << 20;
// Large enough for a segment, over the worker's frame limit below: only a segment gets through.
const BYTES = 8 * MiB;

function randomFloats(bytes: number): Float32Array {
  const data = new Float32Array(bytes / 4);
  const view = new Uint8Array(data.buffer);
  for (let at = 0; at < view.length; at += 65_536) view.set(randomBytes(65_536), at);
  return data;
}

function segmentsIn(worker: SpawnedWorker): string[] {
  return readdirSync(worker.sharedMemoryDir!);
}

describe.each(TRANSPORTS)("shared memory with a spawned worker over %s", (transport) => {
  let worker: SpawnedWorker;
  beforeAll(async () => {
    worker = await spawnWorker({
      transport,
      maxMessageBytes: 2 * MiB,
      sharedMemory: { minBytes: MiB, replyMinBytes: MiB },
    });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("makes a private folder in /dev/shm, which the worker is told of", () => {
    const dir = worker.sharedMemoryDir!;
    expect(dir.startsWith("/dev/shm/advmoe-")).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(worker.connection.sharedMemory?.dir).toBe(dir);
  });

  it("echoes a tensor over the frame limit bit-exactly, both ways through segments", async () => {
    const data = randomFloats(BYTES);
    const back = await worker.echo({
      x: tensor(data, [BYTES / 4 / 1024, 1024]),
      small: tensor(new Int32Array([7]), [1]),
    });
    expect(back.x!.shape).toEqual([BYTES / 4 / 1024, 1024]);
    expect(Buffer.from(back.x!.data.buffer, back.x!.data.byteOffset, BYTES).equals(Buffer.from(data.buffer))).toBe(
      true,
    );
    expect(toNumbers(back.small!)).toEqual([7]);
    await worker.connection.sharedMemory!.removed();
    expect(segmentsIn(worker)).toEqual([]);
  });

  it("downloads a worker tensor over the frame limit", async () => {
    const reply = await worker.request("transfer.source", { bytes: 1.5 * MiB });
    expect(reply.tensors.data!.data.byteLength).toBe(1.5 * MiB);
    await worker.connection.sharedMemory!.removed();
    expect(segmentsIn(worker)).toEqual([]);
  });

  it("refuses a segment changed after it was announced, and keeps serving", async () => {
    const shm = worker.connection.sharedMemory!;
    const write = shm.write.bind(shm);
    shm.write = (bytes) => {
      const ref = write(bytes);
      const path = join(shm.dir, ref.name);
      const changed = readFileSync(path);
      changed[12_345] = (changed[12_345] as number) ^ 1;
      writeFileSync(path, changed);
      return ref;
    };
    try {
      const call = worker.request("transfer.sink", {}, { tensors: { x: tensor(randomFloats(BYTES), [BYTES / 4]) } });
      await expect(call).rejects.toThrow(BadTensorError);
      await expect(call).rejects.toMatchObject({ details: { rule: "shm_mac" } });
    } finally {
      shm.write = write;
    }
    const after = await worker.request(
      "transfer.sink",
      {},
      { tensors: { x: tensor(randomFloats(BYTES), [BYTES / 4]) } },
    );
    expect(after.result.bytes).toBe(BYTES);
  });

  it("fails the call whose reply segment was changed, and keeps serving", async () => {
    const shm = worker.connection.sharedMemory!;
    const read = shm.read.bind(shm);
    shm.read = (ref, bytes) => {
      const path = join(shm.dir, ref.name);
      const changed = readFileSync(path);
      changed[0] = (changed[0] as number) ^ 0xff;
      writeFileSync(path, changed);
      return read(ref, bytes);
    };
    try {
      await expect(worker.request("transfer.source", { bytes: 1.5 * MiB })).rejects.toThrow(ProtocolError);
    } finally {
      shm.read = read;
    }
    await shm.removed();
    expect(segmentsIn(worker)).toEqual([]);
    expect((await worker.request("transfer.source", { bytes: 1.5 * MiB })).tensors.data!.data.byteLength).toBe(
      1.5 * MiB,
    );
  });
});

describe.each([
  ["without shared memory", false],
  ["by default, under 128 MiB", undefined],
] as const)("a worker %s", (_, sharedMemory) => {
  it("sends frames, so the frame limit applies", async () => {
    await using worker = await spawnWorker({ sharedMemory, maxMessageBytes: 2 * MiB });
    expect(worker.sharedMemoryDir === undefined).toBe(sharedMemory === false);
    const call = worker.request("transfer.sink", {}, { tensors: { x: tensor(randomFloats(BYTES), [BYTES / 4]) } });
    await expect(call).rejects.toThrow(TooLargeError);
    const small = await worker.request("transfer.sink", {}, { tensors: { x: tensor(randomFloats(MiB), [MiB / 4]) } });
    expect(small.result.bytes).toBe(MiB);
  });
});

describe("segment folders after a crash", () => {
  it("goes with a worker killed by SIGKILL", async () => {
    const worker = await spawnWorker({ sharedMemory: { minBytes: MiB, replyMinBytes: MiB } });
    const dir = worker.sharedMemoryDir!;
    await worker.echo({ x: tensor(randomFloats(2 * MiB), [MiB / 2]) });
    expect(existsSync(dir)).toBe(true);
    worker.kill("SIGKILL");
    await worker.exited;
    expect(existsSync(dir)).toBe(false);
    await worker.close();
  });

  it("a folder whose owner died is swept by the next launch; a live owner's is kept", () => {
    // A pid no process has: above the kernel's pid_max.
    const dead = join("/dev/shm", `advmoe-${2 ** 22 + 1}-stale`);
    const live = join("/dev/shm", `advmoe-${process.pid}-live`);
    mkdirSync(dead, { mode: 0o700 });
    writeFileSync(join(dead, "a".repeat(32)), "left over");
    mkdirSync(live, { mode: 0o700 });
    try {
      const created = SharedMemory.create(randomBytes(32));
      created?.destroy();
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(sweepStale()).toEqual([]);
    } finally {
      new SharedMemory(live, randomBytes(32)).destroy();
      new SharedMemory(dead, randomBytes(32)).destroy();
    }
  });
});
