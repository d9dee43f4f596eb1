// Pipelined echo: one client keeps `--window` requests in flight against one worker and
// counts replies per second. Usage: npx tsx bench/pipeline.ts [--window 1000] [--requests 100000]
import { parseArgs } from "node:util";
import { spawnWorker } from "../ts/launcher/spawn.js";

const { values } = parseArgs({
  options: {
    window: { type: "string", default: "1000" },
    requests: { type: "string", default: "100000" },
    repeats: { type: "string", default: "3" },
    transport: { type: "string", default: "ipc" },
  },
});
const window = Number(values.window);
const requests = Number(values.requests);

await using worker = await spawnWorker({ transport: values.transport as "ipc" | "tcp" });
const connection = worker.connection;

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
for (let i = 0; i < Number(values.repeats); i++) {
  rates.push(await run(requests, window));
  sequential.push(await run(Math.min(requests, 3000), 1));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`transport ${values.transport}, window ${window}, ${requests} requests x ${values.repeats}`);
console.log(
  `pipelined req/s: ${rates.map((r) => r.toFixed(0)).join(" ")} (median ${median(rates).toFixed(0)}, target >= 40000)`,
);
console.log(
  `sequential req/s: ${sequential.map((r) => r.toFixed(0)).join(" ")} (median ${median(sequential).toFixed(0)})`,
);
console.log(`pipelined / sequential: ${(median(rates) / median(sequential)).toFixed(1)}x`);
