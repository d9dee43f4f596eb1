// Run by sdk_test.ts without --allow-run: prints the error spawnWorker gives.
import { spawnWorker } from "advmoe";

try {
  await spawnWorker();
  console.log("spawned without --allow-run");
} catch (err) {
  console.log(`${(err as Error).name}: ${(err as Error).message}`);
}
