// `advmoe evaluate CHECKPOINT [--spec FILE] [--attack pgd --eps 0.03 ...]`: a robustness report of a saved model.
import { basename, extname, resolve } from "node:path";
import { z } from "zod";
import type { Model } from "../client/model.js";
import type { Worker } from "../client/worker.js";
import { BadCheckpointError } from "../protocol/errors.js";
import { EvaluateRunSpec, RunSpec } from "../schemas/run.js";
import { CliError, EXIT } from "./exit-codes.js";
import { interruptSignal } from "./interrupt.js";
import { type OutputFlags, Reporter } from "./output.js";
import { type FinalReport, writeReport } from "./report.js";
import { formatIssues, fromFile, readSpecData } from "./spec-file.js";
import { openWorker, type WorkerFlags } from "./worker.js";

/** Flags that write or change the evaluation spec from the command line. */
export const EVALUATE_OPTIONS = {
  spec: z
    .string()
    .min(1)
    .optional()
    .describe("Spec file (JSON or YAML) with data, evaluation, split and name fields; a train run file works too."),
  attack: z
    .array(z.string())
    .optional()
    .describe("Attack to run, repeatable: fgsm, pgd, trades, router, pathway, or autoattack; replaces the file's."),
  eps: z.coerce.number().optional().describe("Radius of the --attack attacks, in [0,1] pixel units (default 8/255)."),
  steps: z.coerce.number().optional().describe("Steps of the --attack attacks."),
  "step-size": z.coerce.number().optional().describe("Step size of the --attack attacks, in pixel units."),
  norm: z.enum(["linf", "l2"]).optional().describe("Norm of the --attack attacks (pgd, autoattack)."),
  "max-samples": z.coerce.number().optional().describe("Evaluate at most this many samples."),
  split: z.enum(["train", "val", "test"]).optional().describe("Data split to evaluate on (default test)."),
  name: z.string().min(1).optional().describe("Model id in the reports (default: the checkpoint's file name)."),
};

type EvaluateFlags = WorkerFlags &
  OutputFlags & { out?: string } & {
    [K in keyof typeof EVALUATE_OPTIONS]: z.output<(typeof EVALUATE_OPTIONS)[K]>;
  };

/** The spec file (an evaluate file or a run file), then the flags on top, checked as one. */
function buildSpec(flags: EvaluateFlags): z.output<typeof EvaluateRunSpec> {
  let base: Record<string, unknown> = {};
  const file = flags.spec;
  if (file) {
    const data = readSpecData(file);
    if (data && typeof data === "object" && "trainer" in data) {
      const run = RunSpec.safeParse(data);
      if (!run.success) throw new CliError(formatIssues(file, run.error), EXIT.badInput);
      base = { name: run.data.name, data: run.data.data, evaluation: run.data.evaluation ?? {}, split: run.data.split };
    } else {
      const parsed = EvaluateRunSpec.safeParse(data);
      if (!parsed.success) throw new CliError(formatIssues(file, parsed.error), EXIT.badInput);
      base = parsed.data;
    }
  }
  const evaluation = { ...((base.evaluation as Record<string, unknown>) ?? {}) };
  if (flags["max-samples"] !== undefined) evaluation.max_samples = flags["max-samples"];
  if (flags.attack?.length) {
    const common = { eps: flags.eps, steps: flags.steps, step_size: flags["step-size"], norm: flags.norm };
    const attacks = [];
    evaluation.autoattack = null;
    for (const name of flags.attack) {
      if (name === "autoattack") evaluation.autoattack = { eps: flags.eps, norm: flags.norm };
      else attacks.push({ name, ...common });
    }
    evaluation.attacks = attacks.map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)));
    if (evaluation.autoattack) {
      evaluation.autoattack = Object.fromEntries(
        Object.entries(evaluation.autoattack).filter(([, v]) => v !== undefined),
      );
    }
  }
  const merged = { ...base, evaluation, split: flags.split ?? base.split, name: flags.name ?? base.name };
  const parsed = EvaluateRunSpec.safeParse(merged);
  if (!parsed.success) throw new CliError(formatIssues(file ?? "command line", parsed.error), EXIT.badInput);
  return parsed.data;
}

/** A model checkpoint, or the model inside a trainer checkpoint. */
export async function loadAnyModel(worker: Worker, path: string): Promise<{ model: Model; kind: "model" | "trainer" }> {
  try {
    return { model: await worker.loadModel(path), kind: "model" };
  } catch (err) {
    if (!(err instanceof BadCheckpointError) || err.details.reason !== "wrong_format") throw err;
    const { model } = await worker.resumeTrainer(path);
    return { model, kind: "trainer" };
  }
}

export async function runEvaluate(checkpoint: string, flags: EvaluateFlags): Promise<number> {
  const spec = buildSpec(flags);
  if (!spec.data) {
    throw new CliError(
      `advmoe evaluate: no data to evaluate on: pass --spec FILE with a data field (a train run file works)`,
      EXIT.badInput,
    );
  }
  const reporter = new Reporter(flags);
  await using worker = await openWorker(flags, (line) => reporter.log(line));
  const { model } = await loadAnyModel(worker, checkpoint);
  const file = flags.spec ?? "command line";
  const dataSpec = spec.data;
  const data = await fromFile(file, "data", () => worker.createDataset(dataSpec));
  const interrupt = interruptSignal((line) => reporter.log(line));
  let report: Awaited<ReturnType<Worker["evaluate"]>>;
  try {
    report = await fromFile(file, "evaluation", async () => {
      const call = worker.evaluate(model, data, spec.evaluation, { split: spec.split, signal: interrupt.signal });
      for await (const event of call) reporter.event("evaluate", event);
      return await call;
    });
  } finally {
    interrupt.dispose();
  }
  const modelId = spec.name ?? basename(checkpoint, extname(checkpoint));
  const final: FinalReport = {
    command: "evaluate",
    model_id: modelId,
    spec_file: flags.spec ?? null,
    checkpoint,
    model: await model.describe(),
    training: null,
    evaluation: report,
    worker: await worker.info(),
  };
  if (flags.out) {
    const files = writeReport(resolve(flags.out), final);
    reporter.log(`advmoe: wrote ${files.join(", ")}`);
  }
  reporter.close();
  if (flags.jsonl !== "-") {
    const s = report.summary;
    const ra = Object.entries(s.ra).map(([k, v]) => `RA ${k} ${(100 * v).toFixed(2)}%`);
    console.log(
      `${modelId}: ${report.samples} samples, SA ${(100 * s.sa).toFixed(2)}%${ra.length ? `, ${ra.join(", ")}` : ""}`,
    );
  }
  return EXIT.ok;
}
