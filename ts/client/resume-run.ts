// A trainer run that outlives its worker process: after a supervised restart it resumes
// from the trainer's last automatic checkpoint and carries on to the planned epoch count.
import { InvalidSpecError, WorkerDiedError } from "../protocol/errors.js";
import type { TrainingEvent } from "../schemas/events.js";
import type { Reply } from "./connection.js";
import type { Model } from "./model.js";
import type { EpochResult, RunResult, Trainer } from "./trainer.js";
import type { RequestOptions } from "./worker.js";

/** What a run with `resumeOnCrash` returns: the run's result and the handles that finished it. */
export interface ResumedRunResult extends RunResult {
  /** Worker restarts the run came through. */
  restarts: number;
  /** The trainer that finished the run: the one it started with, or one resumed after a restart. */
  trainer: Trainer;
  /** After a restart, the resumed trainer's model (handles from before the restart are stale). */
  model?: Model;
}

/** The name of the automatic checkpoint in `checkpoint_dir` (training/engine.py, CHECKPOINT_NAME). */
const CHECKPOINT_NAME = "last.pt";

/**
 * Runs `start` to `epochs` more epochs (default: to the spec's `epochs`). When the worker
 * process dies, waits for the supervisor's replacement, resumes from `checkpoint_dir/last.pt`
 * there and runs on; the run first writes that checkpoint itself, so a crash before the
 * first automatic one neither loses the progress made before the run nor picks up an
 * older run's file.
 */
export async function runResumingOnCrash(
  start: Trainer,
  options: RequestOptions & { epochs?: number },
  onEvent: (event: TrainingEvent) => void,
): Promise<Reply<ResumedRunResult>> {
  const { epochs, ...call } = options;
  const worker = start.worker;
  if (!worker.supervised) {
    throw new InvalidSpecError(
      "invalid_spec",
      "resumeOnCrash: needs a supervised worker, spawned with restart: { maxRestarts, backoffMs }",
      { path: "resumeOnCrash", rule: "requires_restart", received: true },
    );
  }
  const info = await start.describe(call);
  const spec = info.spec as { checkpoint_dir: string | null; epochs: number };
  if (spec.checkpoint_dir === null) {
    throw new InvalidSpecError(
      "invalid_spec",
      "spec.checkpoint_dir: resumeOnCrash resumes from the trainer's automatic checkpoints; set checkpoint_dir",
      { path: "spec.checkpoint_dir", rule: "required_for_resume", received: null },
    );
  }
  const path = `${spec.checkpoint_dir.replace(/\/+$/, "")}/${CHECKPOINT_NAME}`;
  const target = epochs === undefined ? Math.max(spec.epochs, info.epochs_completed) : info.epochs_completed + epochs;
  await start.save(path, call);

  let trainer = start;
  let model: Model | undefined;
  let completed = info.epochs_completed;
  let checkpointed = info.epochs_completed;
  let restarts = 0;
  const done: EpochResult[] = []; // epochs that a checkpoint covers, from segments that died
  while (true) {
    const generation = worker.generation;
    const seen: EpochResult[] = [];
    try {
      const params = { handle: trainer.handle, epochs: Math.max(target - completed, 0) };
      const { result } = await worker.request("trainer.run", params, {
        ...call,
        handles: [trainer],
        onEvent: (event) => {
          if (event.event === "checkpoint") checkpointed = event.data.epochs_completed;
          if (event.event === "epoch") seen.push(event.data);
          onEvent(event);
        },
      });
      return { result: { ...result, epochs: [...done, ...result.epochs], restarts, trainer, model }, tensors: {} };
    } catch (err) {
      if (!(err instanceof WorkerDiedError) || call.signal?.aborted) throw err;
      done.push(...seen.filter((summary) => summary.epochs_completed <= checkpointed));
      await worker.waitForRestart(generation, call.signal);
      ({ trainer, model } = await worker.resumeTrainer(path, call));
      completed = trainer.info.epochs_completed;
      checkpointed = completed;
      restarts++;
    }
  }
}
