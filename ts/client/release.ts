// Frees a worker object when its handle goes out of scope (`await using`).
import { CancelledError, WorkerClosedError, WorkerDiedError } from "../protocol/errors.js";
import type { HandleRef, Worker } from "./worker.js";

/**
 * Deletes `ref` on the worker. A closed or dead worker has nothing left to free, nor has
 * one restarted since the handle was made: its object died with the old process.
 */
export async function releaseHandle(worker: Worker, ref: HandleRef): Promise<void> {
  if (worker.connection.failure || ref.generation !== worker.generation) return;
  try {
    await worker.deleteObject(ref);
  } catch (err) {
    if (err instanceof WorkerClosedError || err instanceof WorkerDiedError || err instanceof CancelledError) return;
    throw err;
  }
}
