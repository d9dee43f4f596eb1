// Why bulk data never goes through pythonia: the same float32 tensor read from the worker
// over the ZeroMQ protocol and through a pythonia proxy (`tolist()`), side by side in one
// run of one inline worker. Usage: npx tsx bench/pythonia_transfer.ts [--mib 4] [--repeats 3]
import { parseArgs } from "node:util";
import { spawnPythoniaWorker } from "../ts/launcher/pythonia.js";

const { values } = parseArgs({
  options: { mib: { type: "string", default: "4" }, repeats: { type: "string", default: "3" } },
});
const bytes = Number(values.mib) * 2 ** 20;
const repeats = Number(values.repeats);

const worker = await spawnPythoniaWorker({ threads: 1 });
try {
  const torch = await worker.python.import("torch");
  const numel = bytes / 4;
  const held = await torch.rand(numel); // the tensor the bridge reads, in the worker's interpreter
  const best = async (f: () => Promise<unknown>) => {
    let fastest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      await f();
      fastest = Math.min(fastest, performance.now() - t);
    }
    return fastest / 1000;
  };
  const zmq = await best(() => worker.request("transfer.source", { bytes }));
  const bridge = await best(async () => {
    const list = await (await held.tolist()).valueOf();
    if ((list as number[]).length !== numel) throw new Error("short read through pythonia");
  });
  const mbps = (s: number) => bytes / s / 1e6;
  console.log(`${values.mib} MiB, best of ${repeats}`);
  console.log(`  ZeroMQ protocol (raw tensor frame): ${mbps(zmq).toFixed(0)} MB/s`);
  console.log(`  pythonia proxy (tolist, JSON):      ${mbps(bridge).toFixed(1)} MB/s`);
  console.log(`  ratio: ZeroMQ is ${(bridge / zmq).toFixed(0)}x faster`);
} finally {
  await worker.close();
}
