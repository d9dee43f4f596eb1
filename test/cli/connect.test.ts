import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runCli, tinyRun, workspace, writeSpec } from "./run-cli.js";

const PYTHON = resolve(import.meta.dirname, "..", "..", ".venv", "bin", "python");

describe("advmoe --connect", { timeout: 240_000 }, () => {
  it("trains on a worker that is already running, with the key from --key-file", async () => {
    const dir = workspace("connect");
    const key = randomBytes(32).toString("hex");
    const worker = execa(
      PYTHON,
      ["-m", "advmoe_worker", "--bind", "tcp://127.0.0.1:0", "--workspace", dir, "--threads", "1"],
      { env: { ADVMOE_KEY: key }, reject: false },
    );
    try {
      const endpoint = await new Promise<string>((found) => {
        createInterface({ input: worker.stdout! }).on("line", (line) => {
          const m = /^ADVMOE_READY (\{.*\}) /.exec(line);
          if (m) found((JSON.parse(m[1]!) as { endpoint: string }).endpoint);
        });
      });
      writeFileSync(join(dir, "key.hex"), `${key}\n`);
      writeSpec(dir, "run.json", tinyRun({ evaluation: null }));
      const out = await runCli(dir, ["train", "run.json", "--connect", endpoint, "--key-file", "key.hex"]);
      expect(out.exitCode).toBe(0);
      expect(out.stderr).toContain(`connected to the worker at ${endpoint}`);
      expect(out.stdout).toContain("tiny: 1 epochs, 4 steps");

      const noKey = await runCli(dir, ["train", "run.json", "--connect", endpoint]);
      expect(noKey.exitCode).toBe(2);
      expect(noKey.stderr).toContain("--key-file");
    } finally {
      worker.kill("SIGTERM");
      await worker;
    }
  });
});
