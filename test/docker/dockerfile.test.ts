import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT, resolvePython } from "../../ts/launcher/python.js";
import { connectWorker } from "../../ts/launcher/spawn.js";

const dockerfile = readFileSync(join(PACKAGE_ROOT, "Dockerfile"), "utf8");

describe("Dockerfile", () => {
  it("copies only files that exist", () => {
    const sources = [...dockerfile.matchAll(/^COPY\s+(.+)\s+\S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(sources.length).toBeGreaterThan(2);
    for (const source of sources) expect(existsSync(join(PACKAGE_ROOT, source)), source).toBe(true);
  });

  it("points the worker at the schemas it copies", () => {
    const schemaDir = /ADVMOE_SCHEMA_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(dockerfile).toContain(`COPY schemas ${schemaDir}`);
  });

  it("has an entrypoint that serves the protocol when run outside Docker", async () => {
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entrypoint.slice(0, 3)).toEqual(["python", "-m", "advmoe_worker"]);
    // Same command, but on a free port, a private workspace and the project's interpreter.
    const args = entrypoint.slice(1).map((a) => a.replace(":5555", ":0").replace("/workspace", workspace()));
    const key = "ab".repeat(32);
    const child = execa(resolvePython().path, args, {
      env: { ADVMOE_KEY: key, ADVMOE_SCHEMA_DIR: join(PACKAGE_ROOT, "schemas"), PYTHONPATH: join(PACKAGE_ROOT, "py") },
      reject: false,
    });
    try {
      const line = await new Promise<string>((resolve) =>
        createInterface({ input: child.stdout! }).on("line", (l) => l.startsWith("ADVMOE_READY") && resolve(l)),
      );
      const endpoint = JSON.parse(/^ADVMOE_READY (\{.*\}) [0-9a-f]{64}$/.exec(line)![1]!).endpoint.replace(
        "0.0.0.0",
        "127.0.0.1",
      );
      const worker = await connectWorker(endpoint, { key });
      const info = await worker.info();
      expect(info.workspace.startsWith(tmpdir())).toBe(true);
      await worker.shutdown();
      expect((await child).exitCode).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

function workspace(): string {
  return mkdtempSync(join(tmpdir(), "advmoe-ws-"));
}
