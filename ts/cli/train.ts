// `advmoe train <run.json|run.yaml>` and `advmoe resume <checkpoint>`: a training run from a spec file.
import { basename, extname, join, resolve } from "node:path";
import type { Dataset } from "../client/data.js";
import type { Model } from "../client/model.js";
import type { ResumedRunResult } from "../client/resume-run.js";
import type { RunResult, Trainer } from "../client/trainer.js";
import type { Worker } from "../client/worker.js";
import { CancelledError } from "../protocol/errors.js";
import { type ResolvedRunSpec, RunSpec } from "../schemas/run.js";
import { CliError, EXIT } from "./exit-codes.js";
import { interruptSignal } from "./interrupt.js";
import type { OutputFlags } from "./output.js";
import { Reporter } from "./output.js";
import { type FinalReport, writeReport } from "./report.js";
import { fromFile, loadSpecFile } from "./spec-file.js";
import { openWorker, type WorkerFlags } from "./worker.js";

export type TrainFlags = WorkerFlags & OutputFlags & { out?: string };

/** Where an interrupted run leaves its checkpoint: the spec's checkpoint_dir, else --out, else cwd. */
function interruptedPath(trainer: Trainer, flags: TrainFlags): string {
  const dir = (trainer.info.spec as { checkpoint_dir?: string | null }).checkpoint_dir;
  if (dir) return join(dir, "last.pt");
  return join(flags.out ?? ".", "last.pt");
}

/** Runs the trainer to the end of its spec's epochs, then the evaluation; shared by train and resume. */
async function drive(args: {
  command: "train" | "resume";
  worker: Worker;
  trainer: Trainer;
  model: Model;
  data: Dataset | null;
  run: ResolvedRunSpec | null;
  specFile: string | null;
  checkpoint: string | null;
  modelId: string;
  flags: TrainFlags;
  reporter: Reporter;
}): Promise<number> {
  const { worker, run, flags, reporter } = args;
  // After a supervised restart the run finishes on the handles resumed in the new worker.
  let { trainer, model, data } = args;
  const epochs = (trainer.info.spec as { epochs: number }).epochs;
  reporter.startTraining(trainer.info.steps_per_epoch, epochs, trainer.info.epochs_completed);
  // A signal pauses the trainer: the worker holds after the current step and streams
  // `paused`, so every step taken is reported before the call is cancelled and saved.
  const interrupt = interruptSignal((line) => reporter.log(line));
  const stop = new AbortController();
  interrupt.signal.addEventListener("abort", () => {
    trainer.pause().catch(() => stop.abort());
  });
  let result: RunResult | ResumedRunResult;
  try {
    // A supervised worker (--restarts) is replaced when it dies, and the run resumes there.
    const call = worker.supervised
      ? trainer.run({ signal: stop.signal, resumeOnCrash: true })
      : trainer.run({ signal: stop.signal });
    for await (const event of call) {
      reporter.event("train", event);
      if (event.event === "paused" && interrupt.signal.aborted) stop.abort();
    }
    result = await call;
    const resumed = worker.supervised ? (result as ResumedRunResult) : undefined;
    if (resumed && resumed.restarts > 0) {
      trainer = resumed.trainer;
      model = resumed.model ?? model;
      if (data && run) data = await worker.createDataset(run.data);
    }
  } catch (err) {
    if (!(err instanceof CancelledError) || !interrupt.signal.aborted) throw err;
    interrupt.dispose();
    const saved = await trainer.save(interruptedPath(trainer, flags));
    const info = await trainer.describe();
    reporter.close();
    process.stderr.write(
      `advmoe: interrupted after step ${info.global_step} (${info.epochs_completed} epochs done); checkpoint ${saved.path}\n` +
        `advmoe: resume with: advmoe resume ${saved.path}${run && args.specFile ? ` --spec ${args.specFile}` : ""}${flags.out ? ` --out ${flags.out}` : ""}\n`,
    );
    return EXIT.interrupted;
  } finally {
    interrupt.dispose();
  }

  let evaluation = null;
  if (run?.evaluation && data) {
    const evalInterrupt = interruptSignal((line) => reporter.log(line));
    try {
      const call = worker.evaluate(model, data, run.evaluation, { split: run.split, signal: evalInterrupt.signal });
      for await (const event of call) reporter.event("evaluate", event);
      evaluation = await call;
    } finally {
      evalInterrupt.dispose();
    }
  }
  const info = await trainer.describe();
  const report: FinalReport = {
    command: args.command,
    model_id: args.modelId,
    spec_file: args.specFile,
    checkpoint: args.checkpoint,
    model: await model.describe(),
    training: {
      method: info.method,
      global_step: info.global_step,
      epochs_completed: info.epochs_completed,
      epochs: result.epochs,
    },
    evaluation,
    worker: await worker.info(),
  };
  if (flags.out) {
    const saved = await model.save(join(flags.out, "model.pt"));
    const trainerSaved = await trainer.save(join(flags.out, "trainer.pt"));
    const files = writeReport(resolve(flags.out), report);
    reporter.log(`advmoe: wrote ${[...files, saved.path, trainerSaved.path].join(", ")}`);
  }
  reporter.close();
  const s = evaluation?.summary;
  if (!flags.quiet && flags.jsonl !== "-") {
    const last = result.epochs.at(-1) as { loss?: number } | undefined;
    console.log(
      `${args.modelId}: ${info.epochs_completed} epochs, ${info.global_step} steps${last?.loss !== undefined ? `, last loss ${last.loss.toFixed(4)}` : ""}${s ? `; SA ${(100 * s.sa).toFixed(2)}%${s.ra_worst !== null ? `, RA ${(100 * s.ra_worst).toFixed(2)}%` : ""}` : ""}`,
    );
  }
  return EXIT.ok;
}

/** `advmoe train FILE`. */
export async function runTrain(file: string, flags: TrainFlags): Promise<number> {
  const run = loadSpecFile(file, RunSpec);
  const reporter = new Reporter(flags);
  await using worker = await openWorker(flags, (line) => reporter.log(line));
  const data = await fromFile(file, "data", () => worker.createDataset(run.data));
  const model = await fromFile(file, "model", () => worker.createModel(run.model));
  const trainer = await fromFile(file, "trainer", () => worker.createTrainer(model, data, run.trainer));
  const modelId = run.name ?? basename(file, extname(file));
  return await drive({
    command: "train",
    worker,
    trainer,
    model,
    data,
    run,
    specFile: file,
    checkpoint: null,
    modelId,
    flags,
    reporter,
  });
}

/** `advmoe resume CHECKPOINT [--spec FILE]`: the spec file adds the final evaluation. */
export async function runResume(checkpoint: string, specFile: string | undefined, flags: TrainFlags): Promise<number> {
  const run = specFile ? loadSpecFile(specFile, RunSpec) : null;
  const reporter = new Reporter(flags);
  await using worker = await openWorker(flags, (line) => reporter.log(line));
  const { trainer, model } = await worker.resumeTrainer(checkpoint).catch((err: unknown) => {
    throw err instanceof CliError ? err : withPath(err, checkpoint);
  });
  const data = run?.evaluation ? await fromFile(specFile!, "data", () => worker.createDataset(run.data)) : null;
  reporter.log(`advmoe: resumed ${checkpoint} at step ${trainer.info.global_step}`);
  return await drive({
    command: "resume",
    worker,
    trainer,
    model,
    data,
    run,
    specFile: specFile ?? null,
    checkpoint,
    modelId: run?.name ?? basename(checkpoint, extname(checkpoint)),
    flags,
    reporter,
  });
}

function withPath(err: unknown, checkpoint: string): unknown {
  if (err instanceof Error && "code" in err && (err.code === "invalid_spec" || err.code === "not_found")) {
    return new CliError(`${checkpoint}: ${err.message}`, EXIT.badInput, { cause: err });
  }
  return err;
}
