// `advmoe demo`: the main job. Until training lands it checks the whole path: a local
// worker, its environment, and a bit-exact tensor round trip.
import { spawnWorker } from "../launcher/spawn.js";
import { tensor } from "../protocol/tensor.js";

export interface DemoOptions {
  python?: string;
  out: string;
  quick: boolean;
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const started = Date.now();
  await using worker = await spawnWorker({ python: options.python });
  const info = await worker.info();
  console.log(
    `worker: torch ${info.torch} on ${info.default_device} (${worker.python.path}, via ${worker.python.source})`,
  );
  const n = 1 << 20;
  const x = tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
    [1024, 1024],
  );
  const t = Date.now();
  const back = await worker.echo({ x });
  const same = back.x!.data.every((v, i) => v === x.data[i]);
  console.log(`round trip of a ${(n * 4) / 2 ** 20} MiB tensor: ${Date.now() - t} ms, bit-exact: ${same}`);
  if (!same) throw new Error("the tensor came back changed");
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
