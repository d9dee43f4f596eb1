import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { WORKER_ERROR_CODES, WorkerError, workerError } from "../../ts/protocol/errors.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("error codes", () => {
  const generated = JSON.parse(read("schemas/error-codes.json")).codes as string[];

  it("are the list both languages read (schemas/error-codes.json, generated from the TS enum)", () => {
    expect(generated).toEqual([...WORKER_ERROR_CODES]);
  });

  it.each(generated)("%s maps to its own typed error class", (code) => {
    const err = workerError({ code, message: "m", details: { path: "x" } }, "info");
    expect(err).toBeInstanceOf(WorkerError);
    expect(err.code).toBe(code);
    expect(err.method).toBe("info");
    const others = generated.filter((c) => c !== code).map((c) => workerError({ code: c }).constructor);
    expect(others).not.toContain(err.constructor);
  });

  it.each(generated)("%s is documented in docs/protocol.md", (code) => {
    expect(read("docs/protocol.md")).toContain(`| \`${code}\` |`);
  });

  it("an unknown code from a peer becomes an internal error, never a crash", () => {
    expect(workerError({ code: "no_such_code", message: "?" }).code).toBe("internal");
  });
});
