// Pipelined echo: one client keeps `--window` requests in flight against one worker and
// counts replies per second. Usage: npx tsx bench/pipeline.ts [--window 1000] [--requests 100000]
// [--transport ipc|tcp] [--client zeromq|zmtp] (the client transport; default: the runtime's)
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { spawnWorker } from "../ts/launcher/spawn.js";

const { values } = parseArgs({
  options: {
    window: { type: "string", default: "1000" },
    requests: { type: "string", default: "100000" },
    repeats: { type: "string", default: "3" },
    transport: { type: "string", default: "ipc" },
    client: { type: "string" },
    "pid-file": { type: "string" },
  },
});
const window = Number(values.window);
const requests = Number(values.requests);

await using worker = await spawnWorker({
  socket: values.transport as "ipc" | "tcp",
  transport: values.client as "zeromq" | "zmtp" | undefined,
});
const connection = worker.connection;
const workerPid = ((await connection.call("info")).result as { pid: number }).pid;
// For a profiler to attach to the worker (bench/profile.sh).
if (values["pid-file"]) writeFileSync(values["pid-file"], String(workerPid));

/** The worker's user + system CPU seconds so far (Linux /proc; NaN elsewhere). */
function workerCpuS(): number {
  try {
    const fields = readFileSync(`/proc/${workerPid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  } catch {
    return Number.NaN;
  }
}

/** Sends `total` echo requests, never more than `inFlight` unanswered; returns req/s. */
async function run(total: number, inFlight: number): Promise<number> {
  let sent = 0;
  const start = process.hrtime.bigint();
  const lane = async () => {
    while (sent < total) {
      sent++;
      await connection.call("echo");
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
  return total / (Number(process.hrtime.bigint() - start) / 1e9);
}

await run(Math.min(requests, 20_000), window); // warm-up: JIT, socket buffers
const rates: number[] = [];
const sequential: number[] = [];
const clientCpu: number[] = [];
const workerCpu: number[] = [];
for (let i = 0; i < Number(values.repeats); i++) {
  const cpu = process.cpuUsage();
  const wcpu = workerCpuS();
  rates.push(await run(requests, window));
  const used = process.cpuUsage(cpu);
  clientCpu.push(((used.user + used.system) / requests) * 1);
  workerCpu.push(((workerCpuS() - wcpu) / requests) * 1e6);
  sequential.push(await run(Math.min(requests, 3000), 1));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `transport ${values.transport}${values.client ? ` (${values.client} client)` : ""}, window ${window}, ${requests} requests x ${values.repeats}`,
);
console.log(
  `pipelined req/s: ${rates.map((r) => r.toFixed(0)).join(" ")} (median ${median(rates).toFixed(0)}, target >= 40000)`,
);
console.log(
  `sequential req/s: ${sequential.map((r) => r.toFixed(0)).join(" ")} (median ${median(sequential).toFixed(0)})`,
);
console.log(`pipelined / sequential: ${(median(rates) / median(sequential)).toFixed(1)}x`);
// CPU time per request bounds the rate whatever else runs: on two otherwise idle cores
// the busier side sets it.
const client = median(clientCpu);
const server = median(workerCpu);
console.log(
  `CPU µs per pipelined request: client ${client.toFixed(1)}, worker ${server.toFixed(1)} ` +
    `(bound on two free cores: ${(1e6 / Math.max(client, server)).toFixed(0)} req/s)`,
);
