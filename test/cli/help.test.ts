import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { EVALUATE_OPTIONS } from "../../ts/cli/evaluate.js";
import { OUTPUT_OPTIONS, WORKER_OPTIONS } from "../../ts/cli/options.js";
import { EvaluationSpec } from "../../ts/schemas/evaluation.js";
import { EvaluateRunSpec, RunSpec } from "../../ts/schemas/run.js";
import { TrainerSpec } from "../../ts/schemas/trainer.js";
import { runCli, workspace } from "./run-cli.js";

const fields = (schema: z.ZodObject) => Object.entries(schema.shape as Record<string, z.ZodType>);

/** The help line of `name`, or undefined. */
const lineOf = (help: string, name: string) => help.split("\n").find((l) => l.trimStart().startsWith(`${name} `));

describe("advmoe --help", () => {
  const dir = workspace("help");

  it("documents every spec-file field and option of train with its schema description", async () => {
    const { exitCode, stdout } = await runCli(dir, ["train", "--help"]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/^usage: advmoe train <run.json\|run.yaml>/);
    for (const [name, schema] of fields(RunSpec)) {
      expect(schema.description, name).toBeTruthy();
      expect(lineOf(stdout, name), name).toContain(schema.description);
    }
    for (const [name, schema] of fields(TrainerSpec)) {
      expect(schema.description, name).toBeTruthy();
      expect(lineOf(stdout, `trainer.${name}`), name).toContain(schema.description);
    }
    for (const [name, schema] of Object.entries({ ...WORKER_OPTIONS, ...OUTPUT_OPTIONS })) {
      expect(lineOf(stdout, `--${name}`), name).toContain(schema.description);
    }
    for (const code of ["0", "2", "3", "4", "130"]) expect(stdout).toMatch(new RegExp(`^  ${code} +\\S`, "m"));
  });

  it("documents the evaluation fields and attack flags of evaluate", async () => {
    const { exitCode, stdout } = await runCli(dir, ["evaluate", "--help"]);
    expect(exitCode).toBe(0);
    for (const [name, schema] of fields(EvaluateRunSpec)) {
      expect(lineOf(stdout, name), name).toContain(schema.description);
    }
    for (const [name, schema] of fields(EvaluationSpec)) {
      expect(lineOf(stdout, `evaluation.${name}`), name).toContain(schema.description);
    }
    for (const [name, schema] of Object.entries(EVALUATE_OPTIONS)) {
      expect(lineOf(stdout, `--${name}`), name).toContain(schema.description);
    }
  });

  it("prints a spec's JSON Schema, the same as the committed one", async () => {
    const { exitCode, stdout } = await runCli(dir, ["schema", "run"]);
    expect(exitCode).toBe(0);
    const committed = readFileSync(join(import.meta.dirname, "..", "..", "schemas", "specs", "run.json"), "utf8");
    expect(JSON.parse(stdout)).toEqual(JSON.parse(committed));
    const unknown = await runCli(dir, ["schema", "runs"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain("known: model, data, trainer");
  });

  it("exits 2 on an unknown command or a missing argument, listing the commands", async () => {
    const unknown = await runCli(dir, ["fly"]);
    expect(unknown.exitCode).toBe(2);
    for (const command of ["train", "evaluate", "resume", "describe", "info", "demo", "schema"]) {
      expect(unknown.stderr).toMatch(new RegExp(`^  ${command} `, "m"));
    }
    const missing = await runCli(dir, ["train"]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("expected 1 argument(s), got 0");
  });
});
