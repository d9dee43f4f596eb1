// `advmoe info`: which interpreter, torch and devices a local worker gets.
import { spawnWorker } from "../launcher/spawn.js";

export async function runInfo(options: { python?: string }): Promise<void> {
  await using worker = await spawnWorker({ python: options.python });
  const info = await worker.info();
  console.log(`worker ${info.worker_version} (protocol ${info.protocol}) on ${worker.endpoint}`);
  console.log(`python ${info.python} at ${info.executable} (found via ${worker.python.source})`);
  console.log(`torch ${info.torch}, numpy ${info.numpy}, ${info.cpu_threads} CPU threads`);
  for (const d of info.devices) console.log(`device ${d.name}: ${d.description}`);
  console.log(`default device ${info.default_device}; workspace ${info.workspace}`);
}
