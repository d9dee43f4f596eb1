// `advmoe schema <name>`: a spec's JSON Schema, the same document the worker validates with.
import { z } from "zod";
import { SPECS } from "../schemas/registry.js";

export const SCHEMA_NAMES = Object.keys(SPECS);

export function renderSchema(name: string): string {
  const schema = SPECS[name as keyof typeof SPECS];
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" });
  return `${JSON.stringify({ $id: `advmoe/specs/${name}`, ...json }, null, 2)}\n`;
}
