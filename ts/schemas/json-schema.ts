// Renders the zod schemas as JSON Schema documents, the form the worker validates with.
import { z } from "zod";
import { METHODS, SPECS } from "./registry.js";

function render(schema: z.ZodType, id: string): string {
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" });
  return `${JSON.stringify({ $id: `advmoe/${id}`, ...json }, null, 2)}\n`;
}

/** file path under schemas/ → file contents, for every spec and method. */
export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(SPECS)) {
    out.set(`specs/${name}.json`, render(schema, `specs/${name}`));
  }
  for (const [name, { params, result }] of Object.entries(METHODS)) {
    out.set(`methods/${name}.params.json`, render(params, `methods/${name}.params`));
    out.set(`methods/${name}.result.json`, render(result, `methods/${name}.result`));
  }
  return out;
}
