// Round-trip latency and 64 MiB transfer rates of the SDK against raw ZeroMQ, measured
// in the same run and interleaved in blocks, so load from other processes hits every
// side alike. Three sides: the SDK (TS client, signed protocol, worker); raw pyzmq
// (Python DEALER to Python ROUTER, bench/zmq_baseline.py: the target's floor); and the
// Node `zeromq` binding alone against that same raw Python server (what any Node client
// pays before the SDK does anything).
// Usage: npx tsx bench/transport-sides.ts [--rounds 3000] [--transfers 8] [--blocks 3] [--mib 64]
import { parseArgs } from "node:util";
import { execa } from "execa";
import { Dealer } from "zeromq";
import { resolvePython } from "../ts/launcher/python.js";
import { spawnWorker } from "../ts/launcher/spawn.js";
import { tensor } from "../ts/protocol/tensor.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3000" },
    transfers: { type: "string", default: "8" },
    blocks: { type: "string", default: "3" },
    mib: { type: "string", default: "64" },
  },
});
const blocks = Number(values.blocks);
const rounds = Math.ceil(Number(values.rounds) / blocks);
const transfers = Math.max(1, Math.ceil(Number(values.transfers) / blocks));
const bytes = Number(values.mib) * 2 ** 20;
const python = resolvePython().path;

interface Samples {
  rtt: number[];
  up: number[];
  down: number[];
}
const empty = (): Samples => ({ rtt: [], up: [], down: [] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!;
const now = () => process.hrtime.bigint();
const since = (t: bigint) => Number(now() - t) / 1e3; // µs

async function sdkBlock(call: (m: string, p?: object, t?: object) => Promise<unknown>, out: Samples) {
  for (let i = 0; i < 50; i++) await call("echo");
  for (let i = 0; i < rounds; i++) {
    const t = now();
    await call("echo");
    out.rtt.push(since(t));
  }
  const payload = tensor(new Uint8Array(bytes).fill(7), [bytes]);
  for (let i = 0; i < transfers; i++) {
    let t = now();
    await call("transfer.sink", {}, { tensors: { x: payload } });
    out.up.push(since(t));
    t = now();
    await call("transfer.source", { bytes });
    out.down.push(since(t));
  }
}

async function nodeRawBlock(endpoint: string, out: Samples) {
  const socket = new Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  socket.connect(endpoint);
  const rtt = async (frames: Uint8Array[]) => {
    await socket.send(frames);
    await socket.receive();
  };
  const echo = [Buffer.from("echo")];
  for (let i = 0; i < 50; i++) await rtt(echo);
  for (let i = 0; i < rounds; i++) {
    const t = now();
    await rtt(echo);
    out.rtt.push(since(t));
  }
  const payload = Buffer.alloc(bytes, 7);
  for (let i = 0; i < transfers; i++) {
    let t = now();
    await rtt([Buffer.from("sink"), payload]);
    out.up.push(since(t));
    t = now();
    await rtt([Buffer.from("source")]);
    out.down.push(since(t));
  }
  socket.close();
}

async function pyzmqBlock(transport: string, out: Samples) {
  const args = ["bench/zmq_baseline.py", "--transport", transport, "--rounds", String(rounds)];
  args.push("--bytes", String(bytes), "--transfers", String(transfers), "--samples");
  const { stdout } = await execa(python, args);
  const got = JSON.parse(stdout.trim().split("\n").at(-1)!) as Samples;
  out.rtt.push(...got.rtt);
  out.up.push(...got.up);
  out.down.push(...got.down);
}

const fmt = (x: number, d = 1) => x.toFixed(d).padStart(9);
const gbps = (us: number[]) => bytes / median(us) / 1e3;
console.log(
  `${rounds * blocks} round trips and ${transfers * blocks} transfers of ${values.mib} MiB each way per side,`,
);
console.log(`in ${blocks} interleaved blocks per side; p50/p99 over all round trips, GB/s from the median transfer`);
console.log("");
console.log("| transport | side | p50 µs | p99 µs | upload GB/s | download GB/s |");
console.log("|---|---|---:|---:|---:|---:|");
const ratios: string[] = [];
for (const transport of ["ipc", "tcp"] as const) {
  await using worker = await spawnWorker({ socket: transport, maxMessageBytes: 2 * bytes });
  const call = (m: string, p: object = {}, o: object = {}) => worker.connection.call(m, p as never, o);
  const server = execa(python, [
    "bench/zmq_baseline.py",
    "--serve",
    "--transport",
    transport,
    "--bytes",
    String(bytes),
  ]);
  const endpoint = await new Promise<string>((resolve) =>
    server.stdout!.once("data", (d) => resolve(String(d).trim())),
  );
  const sdk = empty();
  const raw = empty();
  const node = empty();
  for (let b = 0; b < blocks; b++) {
    await sdkBlock(call, sdk);
    await pyzmqBlock(transport, raw);
    await nodeRawBlock(endpoint, node);
  }
  server.kill();
  await server.catch(() => undefined);
  for (const [side, s] of [
    ["SDK (TS client → worker)", sdk],
    ["raw pyzmq (Python → Python)", raw],
    ["raw Node zeromq → raw pyzmq server", node],
  ] as const) {
    console.log(
      `| ${transport} | ${side} | ${fmt(median(s.rtt))} | ${fmt(quantile(s.rtt, 0.99))} | ${fmt(gbps(s.up), 2)} | ${fmt(gbps(s.down), 2)} |`,
    );
  }
  ratios.push(
    `${transport}: p50 SDK / raw pyzmq ${(median(sdk.rtt) / median(raw.rtt)).toFixed(2)}x (target <= 1.3), ` +
      `SDK / raw Node ${(median(sdk.rtt) / median(node.rtt)).toFixed(2)}x, raw Node / raw pyzmq ${(median(node.rtt) / median(raw.rtt)).toFixed(2)}x; ` +
      `${values.mib} MiB SDK / raw pyzmq: up ${(gbps(sdk.up) / gbps(raw.up)).toFixed(2)}x, down ${(gbps(sdk.down) / gbps(raw.down)).toFixed(2)}x (target >= 0.9)`,
  );
}
console.log("");
for (const line of ratios) console.log(`- ${line}`);
