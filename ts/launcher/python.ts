// Finds the Python interpreter that runs the worker: option > $ADVMOE_PYTHON > project venv.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { PythonChoice } from "../client/worker.js";
import { LaunchError } from "../protocol/errors.js";

/** The package root (the folder with package.json, py/ and schemas/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Environment variable naming the worker's interpreter. */
export const PYTHON_ENV = "ADVMOE_PYTHON";

/**
 * The interpreter to launch. `python3` on PATH is never used implicitly: it may be one
 * without torch. Throws LaunchError saying what was tried.
 */
export function resolvePython(explicit?: string, env: NodeJS.ProcessEnv = process.env): PythonChoice {
  if (explicit) return { path: explicit, source: "option" };
  const fromEnv = env[PYTHON_ENV];
  if (fromEnv) return { path: fromEnv, source: "env" };
  const venv = join(PACKAGE_ROOT, ".venv", process.platform === "win32" ? "Scripts/python.exe" : "bin/python");
  if (existsSync(venv)) return { path: venv, source: "venv" };
  throw new LaunchError(
    "launch_failed",
    `no Python interpreter for the worker: pass { python }, set ${PYTHON_ENV}, or run \`npm run setup\` to create ${venv}`,
    { tried: ["option", PYTHON_ENV, venv] },
  );
}
