// Frees a worker object when its handle goes out of scope (`await using`).
import { CancelledError, WorkerClosedError, WorkerDiedError } from "../protocol/errors.js";
import type { Worker } from "./worker.js";

/** Deletes `handle` on the worker; a closed or dead worker has nothing left to free. */
export async function releaseHandle(worker: Worker, handle: string): Promise<void> {
  if (worker.connection.failure) return;
  try {
    await worker.deleteObject(handle);
  } catch (err) {
    if (err instanceof WorkerClosedError || err instanceof WorkerDiedError || err instanceof CancelledError) return;
    throw err;
  }
}
