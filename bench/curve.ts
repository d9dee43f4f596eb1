// What CURVE encryption costs: echo round trips and 64 MiB uploads to one worker over
// tcp, plain and encrypted, measured side by side in the same run.
// Usage: npx tsx bench/curve.ts [--rounds 2000] [--transfers 6] [--mib 64]
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { execa } from "execa";
import type { Worker } from "../ts/client/worker.js";
import { PACKAGE_ROOT, resolvePython } from "../ts/launcher/python.js";
import { connectWorker } from "../ts/launcher/spawn.js";
import { tensor } from "../ts/protocol/tensor.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2000" },
    transfers: { type: "string", default: "6" },
    mib: { type: "string", default: "64" },
  },
});
const rounds = Number(values.rounds);
const transfers = Number(values.transfers);
const bytes = Number(values.mib) * 2 ** 20;
const python = resolvePython().path;
const env = { PYTHONPATH: join(PACKAGE_ROOT, "py"), ADVMOE_SCHEMA_DIR: join(PACKAGE_ROOT, "schemas") };

const keys = mkdtempSync(join(tmpdir(), "advmoe-bench-keys-"));
await execa(python, ["-m", "advmoe_worker.keys", keys], { env });
const key = readFileSync(join(keys, "signing.key"), "utf8").trim();
const serverKey = readFileSync(join(keys, "server.public"), "utf8").trim();

async function start(curve: boolean) {
  const args = ["-m", "advmoe_worker", "--bind", "tcp://127.0.0.1:0", "--max-message-bytes", String(2 * bytes)];
  if (curve) args.push("--allow-remote", "--curve-secret-key-file", join(keys, "server.secret"));
  const child = execa(python, args, { env: { ...env, ADVMOE_KEY: key }, reject: false });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).on("line", (l) => l.startsWith("ADVMOE_READY") && resolve(l)),
  );
  const endpoint = JSON.parse(/^ADVMOE_READY (\{.*\}) [0-9a-f]{64}$/.exec(line)![1]!).endpoint as string;
  const worker = await connectWorker(endpoint, curve ? { key, curve: { serverKey } } : { key });
  return { worker, child };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(worker: Worker) {
  const rtt = async () => {
    const t = process.hrtime.bigint();
    await worker.connection.call("echo");
    return Number(process.hrtime.bigint() - t) / 1e3;
  };
  for (let i = 0; i < 200; i++) await rtt();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await rtt());
  const payload = tensor(new Uint8Array(bytes).fill(7), [bytes]);
  const upload = async () => {
    const t = process.hrtime.bigint();
    await worker.connection.call("transfer.sink", {}, { tensors: { x: payload } });
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  await upload();
  const up: number[] = [];
  for (let i = 0; i < transfers; i++) up.push(await upload());
  return { p50_us: median(samples), upload_gbps: bytes / median(up) / 1e9 };
}

const results: Record<string, { p50_us: number; upload_gbps: number }> = {};
for (const curve of [false, true]) {
  const { worker, child } = await start(curve);
  results[curve ? "curve" : "plain"] = await measure(worker);
  await worker.shutdown();
  worker.close();
  await child;
}
const { plain, curve } = results as Record<"plain" | "curve", { p50_us: number; upload_gbps: number }>;
console.log(`tcp, rounds ${rounds}, transfers ${transfers} x ${bytes / 2 ** 20} MiB`);
console.log("side     p50 µs   up GB/s");
for (const [side, n] of Object.entries(results)) {
  console.log(`${side.padEnd(7)} ${n.p50_us.toFixed(1).padStart(8)} ${n.upload_gbps.toFixed(2).padStart(9)}`);
}
console.log(
  `ratio   p50 ${(curve.p50_us / plain.p50_us).toFixed(2)}x, upload ${(curve.upload_gbps / plain.upload_gbps).toFixed(2)}x`,
);
