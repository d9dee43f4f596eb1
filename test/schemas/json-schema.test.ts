import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EVENTS } from "../../ts/schemas/events.js";
import { renderSchemas } from "../../ts/schemas/json-schema.js";
import { METHODS, SPECS } from "../../ts/schemas/registry.js";

describe("generated JSON schemas", () => {
  const rendered = renderSchemas();

  it("covers every method, spec and event kind, and the error codes", () => {
    const events = Object.keys(EVENTS).length;
    expect(rendered.size).toBe(2 * Object.keys(METHODS).length + Object.keys(SPECS).length + events + 1);
  });

  it.each([...rendered.keys()])("schemas/%s is committed and up to date (npm run schemas)", (file) => {
    const committed = readFileSync(new URL(`../../schemas/${file}`, import.meta.url), "utf8");
    expect(committed).toBe(rendered.get(file));
  });

  it("records defaults so the worker can fill them", () => {
    const model = JSON.parse(rendered.get("specs/model.json")!);
    expect(model.properties.ratio.default).toBe(1);
    expect(model.required).toEqual(["arch"]);
    expect(model.additionalProperties).toBe(false);
  });
});
