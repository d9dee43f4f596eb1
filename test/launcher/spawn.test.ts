import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT, resolvePython } from "../../ts/launcher/python.js";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import { LaunchError } from "../../ts/protocol/errors.js";

describe("resolvePython", () => {
  it("prefers the explicit option, then ADVMOE_PYTHON, then the project venv", () => {
    expect(resolvePython("/opt/py", { ADVMOE_PYTHON: "/env/py" })).toEqual({ path: "/opt/py", source: "option" });
    expect(resolvePython(undefined, { ADVMOE_PYTHON: "/env/py" })).toEqual({ path: "/env/py", source: "env" });
    expect(resolvePython(undefined, {})).toEqual({ path: join(PACKAGE_ROOT, ".venv/bin/python"), source: "venv" });
  });
});

describe("spawnWorker failures", () => {
  it("reports the interpreter and its stderr when the worker dies before it is ready", async () => {
    const err = await spawnWorker({ python: join(PACKAGE_ROOT, ".venv/bin/python"), args: ["--no-such-flag"] }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(LaunchError);
    expect(err.message).toContain(".venv/bin/python");
    expect(err.details.stderr.join("\n")).toMatch(/unrecognized arguments: --no-such-flag/);
  });

  it("fails clearly when the interpreter does not exist", async () => {
    const err = await spawnWorker({ python: "/nonexistent/python" }).catch((e) => e);
    expect(err).toBeInstanceOf(LaunchError);
    expect(err.message).toContain("/nonexistent/python");
  });

  it("keeps its own key even when env names another", async () => {
    const err = await spawnWorker({
      python: join(PACKAGE_ROOT, ".venv/bin/python"),
      env: { ADVMOE_KEY: "00".repeat(32) },
      readyTimeoutMs: 60_000,
    }).then(
      async (w) => {
        await w.close();
        return undefined;
      },
      (e) => e,
    );
    // The launcher's own key always wins over one in `env`, so the worker does start.
    expect(err).toBeUndefined();
  });
});

/** Whether `pid` runs; a zombie (exited, not yet reaped by a container's init) does not. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

describe("a worker whose parent dies", () => {
  it.each(["SIGKILL", "exit"])(
    "exits by itself and removes its socket and segment folders (parent: %s)",
    async (how) => {
      const fixture = join(import.meta.dirname, "..", "fixtures", "orphan.ts");
      const parent = execa(process.execPath, ["--import", "tsx", fixture, how], { buffer: false, reject: false });
      const line = await new Promise<string>((resolve) =>
        createInterface({ input: parent.stdout! }).once("line", resolve),
      );
      const { pid, endpoint, shm } = JSON.parse(line) as { pid: number; endpoint: string; shm: string };
      expect(existsSync(shm)).toBe(true);
      if (how === "SIGKILL") parent.kill("SIGKILL");
      await parent;
      try {
        const started = Date.now();
        while (isAlive(pid) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
        expect(isAlive(pid)).toBe(false);
        expect(existsSync(dirname(endpoint.slice("ipc://".length)))).toBe(false);
        expect(existsSync(shm)).toBe(false);
      } finally {
        if (isAlive(pid)) process.kill(pid, "SIGKILL");
      }
    },
  );
});
