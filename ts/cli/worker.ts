// The worker a command talks to: a local one it starts, or one already running (--connect).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Worker } from "../client/worker.js";
import { connectWorker, type SpawnedWorker, spawnWorker } from "../launcher/spawn.js";
import { SupervisedWorker } from "../launcher/supervisor.js";
import { CliError, EXIT } from "./exit-codes.js";

export interface WorkerFlags {
  python?: string;
  device: "cpu" | "cuda" | "auto";
  threads?: number;
  workspace?: string;
  connect?: string;
  "key-file"?: string;
  "nproc-per-node"?: number;
  restarts?: number;
}

function readKey(flags: WorkerFlags): string {
  if (flags["key-file"]) {
    try {
      return readFileSync(flags["key-file"], "utf8").trim();
    } catch (err) {
      throw new CliError(`--key-file: cannot read ${flags["key-file"]}: ${(err as Error).message}`, EXIT.badInput);
    }
  }
  const key = process.env.ADVMOE_KEY;
  if (!key)
    throw new CliError("--connect needs the worker's key: pass --key-file FILE or set ADVMOE_KEY", EXIT.badInput);
  return key.trim();
}

/** Starts or connects to the worker; `log` gets one line saying which. */
export async function openWorker(
  flags: WorkerFlags,
  log: (line: string) => void,
): Promise<Worker | SpawnedWorker | SupervisedWorker> {
  if (flags.connect) {
    const key = readKey(flags);
    if (!/^[0-9a-fA-F]{64}$/.test(key)) {
      throw new CliError("the worker key must be 64 hex digits (32 bytes)", EXIT.badInput);
    }
    const worker = await connectWorker(flags.connect, { key });
    log(`advmoe: connected to the worker at ${flags.connect}`);
    return worker;
  }
  const options = {
    python: flags.python,
    device: flags.device === "auto" ? undefined : flags.device,
    threads: flags.threads,
    workspace: resolve(flags.workspace ?? process.cwd()),
    detached: true,
    nprocPerNode: flags["nproc-per-node"],
  };
  const worker = flags.restarts
    ? await spawnWorker({ ...options, restart: { maxRestarts: flags.restarts } })
    : await spawnWorker(options);
  // A detached worker is not stopped with this process by execa; a forced exit (a second
  // SIGINT) must not leave it running (a supervised one: whichever process serves then).
  const stop = () => worker.kill("SIGKILL");
  process.once("exit", stop);
  if (worker instanceof SupervisedWorker) {
    worker.on("restart", (e) =>
      log(
        `advmoe: the worker died (${e.signal ?? `exit code ${e.exit_code}`}); restart ${e.attempt} of ${worker.policy.maxRestarts}: pid ${e.pid}`,
      ),
    );
    worker.on("gave_up", (e) => log(`advmoe: the worker is not restarted again: ${e.reason}`));
  } else {
    void worker.exited.then(() => process.off("exit", stop));
  }
  log(`advmoe: worker pid ${worker.pid} (${worker.python.path}) at ${worker.endpoint}`);
  return worker;
}
