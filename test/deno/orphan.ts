// Run by sdk_test.ts: starts a worker, prints its pid and endpoint, then either waits to
// be killed or (with `exit`) leaves at once through Deno.exit.
import { spawnWorker } from "advmoe";

const worker = await spawnWorker();
await worker.info();
console.log(JSON.stringify({ pid: worker.pid, endpoint: worker.endpoint, shm: worker.sharedMemoryDir }));
if (Deno.args[0] === "exit") Deno.exit(0);
setInterval(() => undefined, 1000);
