// Spec files (JSON or YAML) checked by the zod schemas; every failure names the file, the field and the rule.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ForbiddenPathError, InvalidSpecError } from "../protocol/errors.js";
import { CliError, EXIT } from "./exit-codes.js";

/** The text of a spec file as data: YAML for .yaml/.yml, JSON otherwise. */
export function readSpecData(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`${file}: cannot read the spec file: ${(err as Error).message}`, EXIT.badInput);
  }
  const ext = extname(file).toLowerCase();
  try {
    return ext === ".yaml" || ext === ".yml" ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    const kind = ext === ".yaml" || ext === ".yml" ? "YAML" : "JSON";
    throw new CliError(`${file}: not valid ${kind}: ${(err as Error).message}`, EXIT.badInput);
  }
}

/** `file: path: message (rule: code)` for each issue of a failed parse. */
export function formatIssues(file: string, error: z.ZodError, prefix = ""): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".") || "(root)";
      return `${file}: ${path}: ${issue.message} (rule: ${issue.code})`;
    })
    .join("\n");
}

/** Reads and checks a spec file; exits 2 with every broken rule listed. */
export function loadSpecFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  const data = readSpecData(file);
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new CliError(formatIssues(file, parsed.error), EXIT.badInput);
  return parsed.data;
}

/**
 * Runs a worker call made from section `section` of `file`; a spec the worker refuses
 * or a path outside the workspace becomes exit 2 naming the file and the field path inside it.
 */
export async function fromFile<T>(file: string, section: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof InvalidSpecError) {
      const field = err.path.replace(/^spec\.?/, "");
      const path = [section, field].filter(Boolean).join(".");
      const message = err.message.replace(/^([\w.]+: )+/, "");
      throw new CliError(`${file}: ${path}: ${message} (rule: ${err.rule || err.code})`, EXIT.badInput, {
        cause: err,
      });
    }
    if (err instanceof ForbiddenPathError) {
      const match = /^([\w.]+): (.*)$/s.exec(err.message);
      const field = (match?.[1] ?? "").replace(/^spec\.?/, "");
      const path = [section, field].filter(Boolean).join(".");
      throw new CliError(`${file}: ${path}: ${match?.[2] ?? err.message} (rule: inside_workspace)`, EXIT.badInput, {
        cause: err,
      });
    }
    throw err;
  }
}
