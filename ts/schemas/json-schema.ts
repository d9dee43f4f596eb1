// Renders the zod schemas as JSON Schema documents, the form the worker validates with.
import { z } from "zod";
import { WORKER_ERROR_CODES } from "../protocol/errors.js";
import { EVENTS } from "./events.js";
import { METHODS, SPECS } from "./registry.js";

function render(schema: z.ZodType, id: string): string {
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" });
  return `${JSON.stringify({ $id: `advmoe/${id}`, ...json }, null, 2)}\n`;
}

/** The worker's error codes, the one list both languages read (py/advmoe_worker/errors.py). */
export function renderErrorCodes(): string {
  const doc = {
    $id: "advmoe/error-codes",
    description: "Stable codes of the errors a worker reports; generated from ts/protocol/errors.ts.",
    codes: WORKER_ERROR_CODES,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** file path under schemas/ → file contents, for every spec, method, event kind and the error codes. */
export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(SPECS)) {
    out.set(`specs/${name}.json`, render(schema, `specs/${name}`));
  }
  for (const [name, { params, result }] of Object.entries(METHODS)) {
    out.set(`methods/${name}.params.json`, render(params, `methods/${name}.params`));
    out.set(`methods/${name}.result.json`, render(result, `methods/${name}.result`));
  }
  for (const [name, schema] of Object.entries(EVENTS)) {
    out.set(`events/${name}.json`, render(schema, `events/${name}`));
  }
  out.set("error-codes.json", renderErrorCodes());
  return out;
}
