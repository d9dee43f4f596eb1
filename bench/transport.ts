// Round-trip latency and 64 MiB transfer rates of the SDK against a raw pyzmq baseline
// measured in the same run. Usage: npx tsx bench/transport.ts [--rounds 3000] [--transfers 8]
import { parseArgs } from "node:util";
import { execa } from "execa";
import { resolvePython } from "../ts/launcher/python.js";
import { spawnWorker } from "../ts/launcher/spawn.js";
import { tensor } from "../ts/protocol/tensor.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3000" },
    transfers: { type: "string", default: "8" },
    mib: { type: "string", default: "64" },
  },
});
const rounds = Number(values.rounds);
const transfers = Number(values.transfers);
const bytes = Number(values.mib) * 2 ** 20;

interface Numbers {
  p50_us: number;
  p99_us: number;
  upload_gbps: number;
  download_gbps: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measureSdk(transport: "ipc" | "tcp"): Promise<Numbers> {
  await using worker = await spawnWorker({ transport, maxMessageBytes: 2 * bytes });
  const rtt = async () => {
    const t = process.hrtime.bigint();
    await worker.connection.call("echo");
    return Number(process.hrtime.bigint() - t) / 1e3;
  };
  for (let i = 0; i < 200; i++) await rtt();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await rtt());
  samples.sort((a, b) => a - b);

  const payload = tensor(new Uint8Array(bytes).fill(7), [bytes]);
  const time = async (f: () => Promise<unknown>) => {
    const t = process.hrtime.bigint();
    await f();
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  const sink = () => time(() => worker.connection.call("transfer.sink", {}, { tensors: { x: payload } }));
  const source = () => time(() => worker.connection.call("transfer.source", { bytes }));
  await sink();
  await source();
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < transfers; i++) up.push(await sink());
  for (let i = 0; i < transfers; i++) down.push(await source());
  return {
    p50_us: samples[Math.floor(samples.length / 2)]!,
    p99_us: samples[Math.floor(samples.length * 0.99)]!,
    upload_gbps: bytes / median(up) / 1e9,
    download_gbps: bytes / median(down) / 1e9,
  };
}

async function measureBaseline(transport: "ipc" | "tcp"): Promise<Numbers> {
  const python = resolvePython().path;
  const args = ["bench/zmq_baseline.py", "--transport", transport, "--rounds", String(rounds)];
  args.push("--bytes", String(bytes), "--transfers", String(transfers));
  const { stdout } = await execa(python, args);
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Numbers;
}

const fmt = (x: number, d = 1) => x.toFixed(d).padStart(9);
console.log(`rounds ${rounds}, transfers ${transfers} x ${bytes / 2 ** 20} MiB`);
console.log("transport  side        p50 µs    p99 µs   up GB/s  down GB/s");
for (const transport of ["ipc", "tcp"] as const) {
  const sdk = await measureSdk(transport);
  const base = await measureBaseline(transport);
  for (const [side, n] of [
    ["sdk (TS)", sdk],
    ["pyzmq", base],
  ] as const) {
    console.log(
      `${transport.padEnd(10)} ${side.padEnd(9)} ${fmt(n.p50_us)} ${fmt(n.p99_us)} ${fmt(n.upload_gbps, 2)} ${fmt(n.download_gbps, 2)}`,
    );
  }
  console.log(
    `${transport.padEnd(10)} ratio     p50 ${(sdk.p50_us / base.p50_us).toFixed(2)}x (target <= 1.3)   ` +
      `up ${(sdk.upload_gbps / base.upload_gbps).toFixed(2)}x, down ${(sdk.download_gbps / base.download_gbps).toFixed(2)}x (target >= 0.9)`,
  );
}
