import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import { ForbiddenPathError } from "../../ts/protocol/errors.js";
import { runCli, tinyRun, workspace, writeSpec } from "./run-cli.js";

const PYTHON = resolve(import.meta.dirname, "..", "..", ".venv", "bin", "python");

/** Reads a TensorBoard folder with tensorboard's own event reader. */
const READER = `
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "histograms": {t: [[e.step, list(e.histogram_value.bucket)] for e in acc.Histograms(t)] for t in tags["histograms"]},
    "tensors": tags["tensors"],
}))
`;

interface Line {
  event: string;
  data: Record<string, unknown>;
}

describe("TensorBoard event files from a trainer's log_dir", { timeout: 240_000 }, () => {
  it("holds the scalars the run streamed, expert-load histograms and the evaluation summary", async () => {
    const dir = workspace("tb");
    const spec = tinyRun({
      trainer: { epochs: 2, log_dir: "tb", eval: { attacks: [{ name: "pgd", steps: 1 }], batch_size: 16 } },
    });
    spec.data = { ...spec.data, val_fraction: 0.25 } as typeof spec.data;
    writeSpec(dir, "run.yaml", spec);
    const run = await runCli(dir, ["train", "run.yaml", "--threads", "1", "--jsonl", "events.jsonl", "--quiet"]);
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(readdirSync(join(dir, "tb")).some((f) => f.startsWith("events.out.tfevents."))).toBe(true);

    const read = await execa(PYTHON, ["-c", READER, join(dir, "tb")]);
    const board = JSON.parse(read.stdout) as {
      scalars: Record<string, [number, number][]>;
      histograms: Record<string, [number, number[]][]>;
      tensors: string[];
    };
    const lines = readFileSync(join(dir, "events.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
    // TensorBoard keeps scalars as float32.
    const f32 = (x: unknown) => Math.fround(x as number);
    const steps = lines.filter((l) => l.event === "step").map((l) => l.data);
    // 24 training images (8 held out) in batches of 16, two phases, two epochs.
    expect(steps).toHaveLength(8);
    expect(board.scalars["step/loss"]).toEqual(steps.map((s) => [s.step, f32(s.loss)]));
    expect(board.scalars["step/clean_acc"]).toEqual(steps.map((s) => [s.step, f32(s.clean_acc)]));
    expect(board.scalars["step/expert_load/1"]).toEqual(
      steps.map((s) => [s.step, f32((s.expert_load as number[])[1])]),
    );
    const epochs = lines.filter((l) => l.event === "epoch").map((l) => l.data);
    expect(board.scalars["epoch/loss"]).toEqual(epochs.map((e) => [e.epochs_completed, f32(e.loss)]));
    expect(board.histograms["epoch/expert_load_histogram"]?.map(([step, buckets]) => [step, buckets])).toEqual(
      epochs.map((e) => [e.epochs_completed, (e.expert_load as number[]).map(f32)]),
    );
    const evals = lines.filter((l) => l.event === "eval").map((l) => l.data as { summary: { sa: number } });
    expect(evals).toHaveLength(2);
    expect(board.scalars["eval/sa"]?.map(([, v]) => v)).toEqual(evals.map((e) => f32(e.summary.sa)));
    expect(board.tensors).toContain("eval/summary/text_summary");
  });
});

describe("trainer paths are checked when the trainer is created", { timeout: 240_000 }, () => {
  it("refuses a checkpoint_dir or log_dir outside the workspace at createTrainer, before any step", async () => {
    const dir = workspace("paths");
    await using worker = await spawnWorker({ workspace: dir, threads: 1 });
    const run = tinyRun();
    const data = await worker.createDataset(run.data as never);
    const model = await worker.createModel(run.model as never);
    for (const field of ["checkpoint_dir", "log_dir"] as const) {
      const err = await worker
        .createTrainer(model, data, { ...(run.trainer as Record<string, unknown>), [field]: "../outside" } as never)
        .catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(ForbiddenPathError);
      expect((err as ForbiddenPathError).details).toMatchObject({ path: `spec.${field}`, rule: "inside_workspace" });
    }
    expect(await worker.objects("trainer")).toEqual([]);
  });

  it("names the spec file and field when the command line is refused a path", async () => {
    const dir = workspace("paths");
    writeSpec(dir, "run.json", tinyRun({ trainer: { log_dir: "../tb" } }));
    const out = await runCli(dir, ["train", "run.json", "--threads", "1"]);
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain("run.json: trainer.log_dir: ");
    expect(out.stderr).toContain("(rule: inside_workspace)");
  });
});
