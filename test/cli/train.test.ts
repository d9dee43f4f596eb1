import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import { METHOD_EVENTS } from "../../ts/schemas/events.js";
import { onStdoutLine, runCli, startCli, stderrMatch, tinyRun, workspace, writeSpec } from "./run-cli.js";

interface Line {
  source: "train" | "evaluate";
  event: string;
  data: Record<string, unknown>;
}

const readLines = (path: string): Line[] =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

/** Step metrics without the wall-clock fields, which differ between two runs of the same spec. */
const stepNumbers = (lines: Line[]) =>
  lines
    .filter((l) => l.event === "step")
    .map(({ data }) => {
      const { step_time_s: _t, images_per_s: _i, epoch_summary: _s, ...rest } = data;
      return rest;
    });

// Each test starts one or more workers; a shared machine can make that slow.
describe("advmoe train", { timeout: 240_000 }, () => {
  let dir: string;
  let jsonRun: { exitCode: number | undefined; stdout: string; stderr: string };

  beforeAll(async () => {
    dir = workspace("train");
    writeSpec(dir, "run.json", tinyRun());
    jsonRun = await runCli(dir, ["train", "run.json", "--threads", "1", "--jsonl", "events.jsonl", "--out", "out"]);
  }, 240_000);

  it("trains from a spec file and writes one JSONL line per event, each valid under its schema", () => {
    expect(jsonRun.stderr).not.toMatch(/^advmoe: (?!worker|wrote)/m);
    expect(jsonRun.exitCode).toBe(0);
    const lines = readLines(join(dir, "events.jsonl"));
    const kinds = lines.map((l) => l.event);
    // 32 images in batches of 16, two AdvMoE phases per batch.
    expect(kinds.filter((k) => k === "step")).toHaveLength(4);
    expect(kinds.filter((k) => k === "epoch")).toHaveLength(1);
    expect(kinds.filter((k) => k === "progress")).toHaveLength(1);
    for (const line of lines) {
      const table = line.source === "train" ? METHOD_EVENTS["trainer.run"] : METHOD_EVENTS.evaluate;
      const schema = (table as Record<string, z.ZodType>)[line.event];
      expect(schema, `${line.source} event ${line.event}`).toBeDefined();
      const parsed = schema!.safeParse(line.data);
      expect(parsed.success, `${line.event}: ${parsed.error?.message}`).toBe(true);
    }
    const steps = lines.filter((l) => l.event === "step").map((l) => l.data.step);
    expect(steps).toEqual([1, 2, 3, 4]);
  });

  it("writes the final report as JSON and Markdown, and the model it trained", () => {
    const report = JSON.parse(readFileSync(join(dir, "out", "report.json"), "utf8"));
    expect(report.model_id).toBe("tiny");
    expect(report.training).toMatchObject({ method: "advmoe", global_step: 4, epochs_completed: 1 });
    expect(report.evaluation.samples).toBe(16);
    expect(readFileSync(join(dir, "out", "report.md"), "utf8")).toContain("| SA (clean) |");
    expect(existsSync(join(dir, "out", "model.pt"))).toBe(true);
    const rb = JSON.parse(readFileSync(join(dir, "out", "robustbench.json"), "utf8"));
    expect(rb).toMatchObject({ model_id: "tiny", threat_model: "Linf", eps: 8 / 255 });
    expect(rb.clean_acc).toBe(report.evaluation.summary.sa);
  });

  it("gives the same run from the same spec written in YAML", async () => {
    writeSpec(dir, "run.yaml", tinyRun());
    const yamlRun = await runCli(dir, ["train", "run.yaml", "--threads", "1", "--jsonl", "yaml.jsonl", "--quiet"]);
    expect(yamlRun.exitCode).toBe(0);
    const fromJson = readLines(join(dir, "events.jsonl"));
    const fromYaml = readLines(join(dir, "yaml.jsonl"));
    expect(stepNumbers(fromYaml)).toEqual(stepNumbers(fromJson));
    expect(stepNumbers(fromYaml)).toHaveLength(4);
    const summary = (lines: Line[]) => lines.find((l) => l.event === "progress")?.data;
    expect(summary(fromYaml)).toEqual(summary(fromJson));
  });

  it("evaluates the saved checkpoint exactly as the SDK does", async () => {
    const evaluation = { attacks: [{ name: "pgd", eps: 0.03, steps: 3 }], batch_size: 8, seed: 0 };
    writeSpec(dir, "eval.yaml", { name: "tiny-eval", data: tinyRun().data, evaluation });
    const cli = await runCli(dir, ["evaluate", "out/model.pt", "--spec", "eval.yaml", "--threads", "1", "--out", "ev"]);
    expect(cli.exitCode).toBe(0);
    const fromCli = JSON.parse(readFileSync(join(dir, "ev", "report.json"), "utf8")).evaluation;

    await using worker = await spawnWorker({ workspace: dir, threads: 1 });
    const model = await worker.loadModel("out/model.pt");
    const data = await worker.createDataset(tinyRun().data as never);
    const fromSdk = await worker.evaluate(model, data, evaluation as never, { split: "test" });
    expect(fromCli.summary).toEqual(fromSdk.summary);
    expect(fromCli.attacks.map((a: { settings: unknown }) => a.settings)).toEqual(
      fromSdk.attacks.map((a) => a.settings),
    );
    const rb = JSON.parse(readFileSync(join(dir, "ev", "robustbench.json"), "utf8"));
    expect(rb).toMatchObject({ model_id: "tiny-eval", threat_model: "Linf", eps: 0.03, clean_acc: fromSdk.summary.sa });
    expect(rb.robust_acc).toBe(fromSdk.summary.ra_worst);

    // The same attack from flags instead of the file.
    const flags = await runCli(dir, [
      "evaluate",
      "out/model.pt",
      "--spec",
      "eval.yaml",
      "--attack",
      "pgd",
      "--eps",
      "0.03",
      "--steps",
      "3",
      "--threads",
      "1",
      "--jsonl",
      "-",
    ]);
    expect(flags.exitCode).toBe(0);
    const progress = flags.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.event === "progress");
    expect(progress.at(-1)?.data.ra).toEqual(fromSdk.summary.ra);
  });

  it("describes a checkpoint: spec, MACs and the versions that read it", async () => {
    const out = await runCli(dir, ["describe", "out/trainer.pt", "--json", "--threads", "1"]);
    expect(out.exitCode).toBe(0);
    const described = JSON.parse(out.stdout);
    expect(described.kind).toBe("trainer");
    expect(described.model.spec).toMatchObject(tinyRun().model);
    expect(described.model.macs.total_active).toBeGreaterThan(0);
    expect(described.trainer).toMatchObject({ method: "advmoe", global_step: 4, epochs_completed: 1 });
    expect(described.read_by.torch).toMatch(/^\d+\./);
  });
});

describe("advmoe train: failures and their exit codes", { timeout: 240_000 }, () => {
  it("exits 2 naming the file, the field path and the rule of a bad spec, before any worker starts", async () => {
    const dir = workspace("bad");
    const spec = tinyRun({ trainer: { epochs: 0, optimizer: { lr: -1 } } });
    writeSpec(dir, "bad.yaml", spec);
    const out = await runCli(dir, ["train", "bad.yaml", "--threads", "1"]);
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain("bad.yaml: trainer.epochs: ");
    expect(out.stderr).toContain("bad.yaml: trainer.optimizer.lr: ");
    expect(out.stderr).toContain("rule: too_small");
    expect(out.stderr).not.toContain("worker pid");
  });

  it("exits 2 on a malformed file and on an unknown flag", async () => {
    const dir = workspace("bad");
    writeFileSync(join(dir, "broken.json"), "{");
    const broken = await runCli(dir, ["train", "broken.json"]);
    expect(broken.exitCode).toBe(2);
    expect(broken.stderr).toContain("broken.json: not valid JSON");
    const flag = await runCli(dir, ["train", "broken.json", "--epochs", "3"]);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toContain("--epochs");
    const value = await runCli(dir, ["train", "broken.json", "--device", "tpu"]);
    expect(value.exitCode).toBe(2);
    expect(value.stderr).toContain("--device");
  });

  it("refuses a checkpoint_dir outside the workspace when the trainer is created, before any step", async () => {
    const dir = workspace("outside");
    writeSpec(dir, "run.json", tinyRun({ trainer: { checkpoint_dir: "../outside" } }));
    const out = await runCli(dir, ["train", "run.json", "--threads", "1", "--jsonl", "events.jsonl"]);
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain("run.json: trainer.checkpoint_dir: ");
    expect(out.stderr).toContain("outside the workspace");
    expect(readFileSync(join(dir, "events.jsonl"), "utf8")).toBe("");
  });

  it("exits 4 when training refuses a non-finite step", async () => {
    const dir = workspace("nan");
    // A learning rate of 1e30 sends the weights to inf after the first update.
    writeSpec(dir, "run.json", tinyRun({ trainer: { epochs: 3, optimizer: { lr: 1e30 } }, evaluation: null }));
    const out = await runCli(dir, ["train", "run.json", "--threads", "1", "--jsonl", "events.jsonl"]);
    expect(out.exitCode).toBe(4);
    expect(out.stderr).toMatch(/not finite/);
    const steps = readFileSync(join(dir, "events.jsonl"), "utf8").split("\n").filter(Boolean);
    expect(steps.length).toBeLessThan(12);
  });

  it("exits 3 with the worker's stderr tail when the worker dies mid-run", async () => {
    const dir = workspace("died");
    writeSpec(dir, "run.json", tinyRun({ trainer: { epochs: 200 } }));
    const child = startCli(dir, ["train", "run.json", "--threads", "1", "--jsonl", "-"]);
    const pid = stderrMatch(child, /worker pid (\d+)/).then((m) => Number(m[1]));
    let killed = false;
    onStdoutLine(child, (line) => {
      if (killed || JSON.parse(line).event !== "step") return;
      killed = true;
      void pid.then((p) => process.kill(p, "SIGKILL"));
    });
    const result = await child;
    expect(killed).toBe(true);
    expect(result.exitCode).toBe(3);
    expect(String(result.stderr)).toContain("signal SIGKILL");
    expect(String(result.stderr)).toMatch(/worker stderr \(last \d+ lines\):\n.*advmoe_worker/);
  });

  it("with --restarts, restarts a worker killed mid-run and finishes the run from its last checkpoint", async () => {
    const dir = workspace("restart");
    // 32 images in batches of 16, two phases: 4 steps an epoch, 12 in the run.
    writeSpec(dir, "run.json", tinyRun({ trainer: { epochs: 3, checkpoint_dir: "ckpt", checkpoint_every_steps: 2 } }));
    const args = ["train", "run.json", "--threads", "1", "--jsonl", "-", "--restarts", "1", "--out", "out"];
    const child = startCli(dir, args);
    const pid = stderrMatch(child, /worker pid (\d+)/).then((m) => Number(m[1]));
    let killed = false;
    const steps: number[] = [];
    onStdoutLine(child, (line) => {
      const parsed = JSON.parse(line) as Line;
      if (parsed.event !== "step") return;
      steps.push(parsed.data.step as number);
      if (killed || parsed.data.step !== 3) return;
      killed = true;
      void pid.then((p) => process.kill(p, "SIGKILL"));
    });
    const result = await child;
    expect(killed).toBe(true);
    expect(result.exitCode, String(result.stderr)).toBe(0);
    expect(String(result.stderr)).toMatch(/the worker died \(SIGKILL\); restart 1 of 1: pid \d+/);
    expect(steps.at(-1)).toBe(12);
    const report = JSON.parse(readFileSync(join(dir, "out", "report.json"), "utf8"));
    expect(report.training.epochs_completed).toBe(3);
    expect(report.evaluation.samples).toBe(16);
  });

  it("exits 130 on SIGINT with a checkpoint that advmoe resume finishes", async () => {
    const dir = workspace("sigint");
    // 96 images in batches of 16, two phases: 12 steps an epoch, 36 in the run.
    const spec = tinyRun({ trainer: { epochs: 3, checkpoint_dir: "ckpt" } });
    spec.data.train_size = 96;
    writeSpec(dir, "run.json", spec);
    const child = startCli(dir, ["train", "run.json", "--threads", "1", "--jsonl", "-"]);
    let interrupted = false;
    const seen: Line[] = [];
    onStdoutLine(child, (line) => {
      const parsed = JSON.parse(line) as Line;
      seen.push(parsed);
      if (interrupted || parsed.event !== "step") return;
      interrupted = true;
      child.kill("SIGINT");
    });
    const result = await child;
    expect(result.exitCode, String(result.stderr)).toBe(130);
    const stderr = String(result.stderr);
    const resume = /resume with: advmoe resume (\S+)/.exec(stderr);
    expect(resume?.[1], stderr).toBe(join(dir, "ckpt", "last.pt"));
    // Every step taken before the pause at the step boundary is reported, then `paused`.
    const stoppedAt = seen.filter((l) => l.event === "step").length;
    expect(stoppedAt).toBeLessThan(36);
    expect(seen.at(-1)?.event).toBe("paused");
    expect(stderr).toContain(`interrupted after step ${stoppedAt} `);

    const resumed = await runCli(dir, ["resume", resume![1]!, "--threads", "1", "--jsonl", "resumed.jsonl"]);
    expect(resumed.exitCode).toBe(0);
    const steps = readLines(join(dir, "resumed.jsonl"))
      .filter((l) => l.event === "step")
      .map((l) => l.data.step);
    expect(steps[0]).toBe(stoppedAt + 1);
    expect(steps.at(-1)).toBe(36);
    const epochs = readLines(join(dir, "resumed.jsonl")).filter((l) => l.event === "epoch");
    expect(epochs.at(-1)?.data.epochs_completed).toBe(3);
  });
});
