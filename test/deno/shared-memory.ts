// Run by sdk_test.ts under --allow-all (Deno's condition for /dev/shm): large tensors
// travel through segments, signed with HMAC-SHA256; prints one JSON line of findings.
import { existsSync } from "node:fs";
import { spawnWorker, tensor } from "advmoe";

const MiB = 1 << 20;
const worker = await spawnWorker({ maxMessageBytes: 2 * MiB, sharedMemory: { minBytes: MiB, replyMinBytes: MiB } });
const dir = worker.sharedMemoryDir!;
const data = new Float32Array((8 * MiB) / 4).map((_, i) => i % 1000);
// Over the worker's frame limit: only a segment gets through, both ways.
const back = await worker.echo({ x: tensor(data, [data.length]) });
let same = back.x!.data.length === data.length;
for (let i = 0; same && i < data.length; i++) same = back.x!.data[i] === data[i];
await worker.connection.sharedMemory!.removed();
const left = Array.from(Deno.readDirSync(dir)).length;
const mac = worker.connection.sharedMemory!.mac;
await worker.close();
console.log(JSON.stringify({ mac, same, left, existed: dir.startsWith("/dev/shm/"), removed: !existsSync(dir) }));
