// Runs the command line as a pipeline would: a child process, its exit code, its stdout and stderr.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { execa, type ResultPromise } from "execa";
import { stringify } from "yaml";
import { TINY_MOE } from "../fixtures/specs.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
// tsx's loader inside one node process: the `tsx` command would run the CLI as its child and
// relay signals, SIGKILLing a child that does not acknowledge one within 30 ms.
const TSX_LOADER = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
export const MAIN = join(ROOT, "ts", "cli", "main.ts");

/** A fresh folder to run in: the worker's workspace. */
export function workspace(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `advmoe-cli-${prefix}-`));
}

/** Writes `spec` as JSON or YAML into `dir`; returns the file name. */
export function writeSpec(dir: string, name: string, spec: unknown): string {
  const text = name.endsWith(".json") ? JSON.stringify(spec, null, 2) : stringify(spec);
  writeFileSync(join(dir, name), text);
  return name;
}

/** Starts `advmoe ...args` in `cwd`. */
export function startCli(cwd: string, args: string[]): ResultPromise<{ reject: false; cwd: string }> {
  return execa(process.execPath, ["--import", TSX_LOADER, MAIN, ...args], {
    cwd,
    reject: false,
    env: { ADVMOE_LOG_LEVEL: "INFO" },
  });
}

/** Runs `advmoe ...args` to its end. */
export async function runCli(cwd: string, args: string[]) {
  const result = await startCli(cwd, args);
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Calls `onLine` for each stdout line of a running CLI, as it comes. */
export function onStdoutLine(child: ResultPromise, onLine: (line: string) => void): void {
  createInterface({ input: child.stdout! }).on("line", onLine);
}

/** Resolves with the first stderr match of `pattern` (e.g. the worker's pid line). */
export function stderrMatch(child: ResultPromise, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolveMatch) => {
    createInterface({ input: child.stderr! }).on("line", (line) => {
      const m = pattern.exec(line);
      if (m) resolveMatch(m);
    });
  });
}

/** The tiny run of the tests: 8x8 synthetic data, a ResNet-18 of width 1/16 with two experts. */
export function tinyRun(overrides: { trainer?: Record<string, unknown>; evaluation?: unknown } = {}) {
  return {
    name: "tiny",
    data: { kind: "synthetic", num_classes: 3, size: 8, channels: 3, train_size: 32, test_size: 16, seed: 3 },
    model: TINY_MOE,
    trainer: {
      method: "advmoe",
      epochs: 1,
      batch_size: 16,
      attack: { steps: 1 },
      optimizer: { lr: 0.05 },
      seed: 11,
      ...overrides.trainer,
    },
    evaluation:
      "evaluation" in overrides
        ? overrides.evaluation
        : { attacks: [{ name: "pgd", steps: 2 }], batch_size: 16, seed: 0 },
  };
}
