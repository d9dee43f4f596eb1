// Checks a Vega-Lite spec the two ways a notebook would meet it: against the published
// JSON Schema (shipped with the vega-lite package), and by compiling it to Vega.
import { createRequire } from "node:module";
import { execa } from "execa";
import { compile, type TopLevelSpec } from "vega-lite";
import { resolvePython } from "../../ts/launcher/python.js";

const schemaPath = createRequire(import.meta.url).resolve("vega-lite/vega-lite-schema.json");

const VALIDATE = `
import json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in Draft7Validator(schema).iter_errors(json.load(sys.stdin))]
print(json.dumps(errors))
`;

/** Schema violations of `spec` (empty when valid). */
export async function vegaLiteErrors(spec: unknown): Promise<string[]> {
  const { stdout } = await execa(resolvePython().path, ["-c", VALIDATE, schemaPath], { input: JSON.stringify(spec) });
  return JSON.parse(stdout) as string[];
}

/** The Vega marks the spec compiles to. */
export function compiledMarks(spec: unknown): unknown[] {
  return compile(spec as TopLevelSpec).spec.marks ?? [];
}
