// Uploads and downloads to a local worker through shared memory, against the same through
// frames and against a plain memcpy of the same size, interleaved in one run. memcpy is
// measured twice: into a fresh buffer (its pages faulted in by the copy, as a receiver's
// must be) and into a buffer already written once (the copy alone).
// Usage: npx tsx bench/shared-memory.ts [--mib 64,256] [--rounds 8] [--blocks 3] [--socket ipc]
import { parseArgs } from "node:util";
import { type SpawnedWorker, spawnWorker } from "../ts/launcher/spawn.js";
import { tensor } from "../ts/protocol/tensor.js";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "64,256" },
    rounds: { type: "string", default: "8" },
    blocks: { type: "string", default: "3" },
    socket: { type: "string", default: "ipc" },
  },
});
const blocks = Number(values.blocks);
const rounds = Math.max(1, Math.ceil(Number(values.rounds) / blocks));
const socket = values.socket as "ipc" | "tcp";
const now = () => process.hrtime.bigint();
const seconds = (t: bigint) => Number(now() - t) / 1e9;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// Every tensor through segments on the shared-memory sides, whatever the defaults.
const SIDES = {
  "frames (sharedMemory: false)": { sharedMemory: false },
  "shared memory, AES-GMAC": { sharedMemory: { mac: "aes-256-gmac", minBytes: 1, replyMinBytes: 1 } },
  "shared memory, HMAC-SHA256": { sharedMemory: { mac: "hmac-sha256", minBytes: 1, replyMinBytes: 1 } },
} as const;

async function measure(workers: [string, SpawnedWorker][], mib: number): Promise<void> {
  const bytes = mib * 2 ** 20;
  const gbps = (xs: number[]) => bytes / median(xs) / 1e9;
  const source = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) source[i] = i & 0xff;
  const warm = Buffer.allocUnsafeSlow(bytes);
  warm.set(source);
  const payload = tensor(source, [bytes]);
  const samples = new Map(workers.map(([side]) => [side, { up: [] as number[], down: [] as number[] }]));
  const memcpy = { fresh: [] as number[], warm: [] as number[] };
  for (const [, worker] of workers) {
    await worker.request("transfer.sink", {}, { tensors: { x: payload } });
    await worker.request("transfer.source", { bytes });
  }
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < rounds; i++) {
      let t = now();
      Buffer.allocUnsafeSlow(bytes).set(source);
      memcpy.fresh.push(seconds(t));
      t = now();
      warm.set(source);
      memcpy.warm.push(seconds(t));
    }
    for (const [side, worker] of workers) {
      const out = samples.get(side)!;
      for (let i = 0; i < rounds; i++) {
        let t = now();
        await worker.request("transfer.sink", {}, { tensors: { x: payload } });
        out.up.push(seconds(t));
        t = now();
        const reply = await worker.request("transfer.source", { bytes });
        out.down.push(seconds(t));
        if (reply.tensors.data?.data.byteLength !== bytes) throw new Error(`${side}: short download`);
      }
      await worker.connection.sharedMemory?.removed();
    }
  }
  const fresh = gbps(memcpy.fresh);
  const written = gbps(memcpy.warm);
  const r = (x: number, y: number) => `${(x / y).toFixed(2)}x`;
  console.log(
    `\n${mib} MiB, ${socket}; ${rounds * blocks} transfers each way per side in ${blocks} interleaved blocks; medians\n`,
  );
  console.log(
    "| side | upload GB/s | download GB/s | up / fresh memcpy | down / fresh memcpy | up / warm memcpy | down / warm memcpy |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const [side, s] of samples) {
    const up = gbps(s.up);
    const down = gbps(s.down);
    console.log(
      `| ${side} | ${up.toFixed(2)} | ${down.toFixed(2)} | ${r(up, fresh)} | ${r(down, fresh)} | ${r(up, written)} | ${r(down, written)} |`,
    );
  }
  console.log(
    `\nmemcpy of ${mib} MiB in this process: into a fresh buffer ${fresh.toFixed(2)} GB/s, into a written one ` +
      `${written.toFixed(2)} GB/s (target: shared memory >= 0.5x memcpy)`,
  );
}

const workers = await Promise.all(
  Object.entries(SIDES).map(
    async ([side, options]) => [side, await spawnWorker({ socket, ...options })] as [string, SpawnedWorker],
  ),
);
try {
  for (const mib of values.mib.split(",").map(Number)) await measure(workers, mib);
} finally {
  await Promise.all(workers.map(([, w]) => w.close()));
}
