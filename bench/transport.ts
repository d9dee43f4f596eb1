// Round-trip latency and 64 MiB transfer rates through the SDK over each TS transport
// (native zeromq, pure-TS zmtp), against a raw pyzmq baseline, all in the same run.
// Runs under Node and Deno; imports the built SDK (`npm run build`) by its package name.
//   npx tsx bench/transport.ts [--rounds 3000] [--transfers 8] [--repeats 3] [--write BENCHMARKS.md]
//   deno run -A bench/transport.ts [same options]
// With --write, the results table replaces this runtime's section of the file.
import { parseArgs } from "node:util";
import { resolvePython, runtime, spawnWorker, type TransportKind, tensor } from "advmoe";
import { execa } from "execa";
import { writeSection } from "../scripts/markdown-section.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3000" },
    transfers: { type: "string", default: "8" },
    mib: { type: "string", default: "64" },
    repeats: { type: "string", default: "3" },
    write: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const transfers = Number(values.transfers);
const repeats = Number(values.repeats);
const bytes = Number(values.mib) * 2 ** 20;
const where = runtime();
// Under Deno the native addon stalls or crashes (scripts/deno-zeromq-stress.ts): it is not measured there.
const kinds: TransportKind[] = where === "node" ? ["zeromq", "zmtp"] : ["zmtp"];

interface Numbers {
  p50_us: number;
  p99_us: number;
  upload_gbps: number;
  download_gbps: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

async function measureSdk(socket: "ipc" | "tcp", transport: TransportKind): Promise<Numbers> {
  await using worker = await spawnWorker({ socket, transport, maxMessageBytes: 2 * bytes });
  const rtt = async () => {
    const t = now();
    await worker.connection.call("echo");
    return now() - t;
  };
  for (let i = 0; i < 200; i++) await rtt();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await rtt());
  samples.sort((a, b) => a - b);

  const payload = tensor(new Uint8Array(bytes).fill(7), [bytes]);
  const time = async (f: () => Promise<unknown>) => {
    const t = now();
    await f();
    return (now() - t) / 1e6;
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

async function measureBaseline(socket: "ipc" | "tcp"): Promise<Numbers> {
  const args = ["bench/zmq_baseline.py", "--transport", socket, "--rounds", String(rounds)];
  args.push("--bytes", String(bytes), "--transfers", String(transfers));
  const { stdout } = await execa(resolvePython().path, args);
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Numbers;
}

/** The median of each number over repeats. */
function combine(runs: Numbers[]): Numbers {
  const pick = (k: keyof Numbers) => median(runs.map((r) => r[k]));
  return {
    p50_us: pick("p50_us"),
    p99_us: pick("p99_us"),
    upload_gbps: pick("upload_gbps"),
    download_gbps: pick("download_gbps"),
  };
}

const sides = [...kinds.map((k) => `SDK over ${k}`), "raw pyzmq"];
// Every repeat of every side, keyed `${socket}|${side}`.
const runs = new Map<string, Numbers[]>();
for (const socket of ["ipc", "tcp"] as const) {
  for (const side of sides) runs.set(`${socket}|${side}`, []);
  // Interleaved, so that load from other processes falls on every side alike.
  for (let r = 0; r < repeats; r++) {
    for (const kind of kinds) runs.get(`${socket}|SDK over ${kind}`)!.push(await measureSdk(socket, kind));
    runs.get(`${socket}|raw pyzmq`)!.push(await measureBaseline(socket));
  }
}
const results = new Map([...runs].map(([key, numbers]) => [key, combine(numbers)]));

const f = (x: number, d = 0) => x.toFixed(d);
const lines = [
  `| socket | side | p50 µs | p99 µs | 64 MiB upload GB/s | 64 MiB download GB/s |`,
  "|---|---|---:|---:|---:|---:|",
];
for (const [key, n] of results) {
  const [socket, side] = key.split("|");
  lines.push(
    `| ${socket} | ${side} | ${f(n.p50_us)} | ${f(n.p99_us)} | ${f(n.upload_gbps, 2)} | ${f(n.download_gbps, 2)} |`,
  );
}
lines.push(
  "",
  "Ratios: the median over repeats of each repeat's ratio, with the lowest and highest in brackets.",
  "",
  "| socket | ratio | p50 | upload | download |",
  "|---|---|---:|---:|---:|",
);
for (const socket of ["ipc", "tcp"] as const) {
  const ratio = (label: string, a: string, b: string) => {
    const [top, bottom] = [runs.get(`${socket}|${a}`)!, runs.get(`${socket}|${b}`)!];
    const cell = (k: keyof Numbers) => {
      const each = top.map((n, r) => n[k] / bottom[r]![k]);
      return `${f(median(each), 2)}× (${f(Math.min(...each), 2)}–${f(Math.max(...each), 2)})`;
    };
    lines.push(`| ${socket} | ${label} | ${cell("p50_us")} | ${cell("upload_gbps")} | ${cell("download_gbps")} |`);
  };
  if (kinds.includes("zeromq")) {
    ratio("zmtp / zeromq (target p50 ≤ 1.2×, transfers ≥ 0.9×)", "SDK over zmtp", "SDK over zeromq");
  }
  for (const kind of kinds) ratio(`SDK over ${kind} / raw pyzmq`, `SDK over ${kind}`, "raw pyzmq");
}
const version =
  where === "deno"
    ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
    : `Node ${process.versions.node}`;
const table = [
  `${version}; ${rounds} sequential \`echo\` round trips after 200 warm-ups; ${transfers} transfers of ${bytes / 2 ** 20} MiB each way (median); median of ${repeats} interleaved repeats.`,
  "",
  ...lines,
].join("\n");
console.log(table);

if (values.write) {
  writeSection(values.write, `bench/transport.ts ${where}`, table);
  console.log(`wrote the table into ${values.write}`);
}
