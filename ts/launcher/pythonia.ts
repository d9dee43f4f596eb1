// The pythonia launch mode: pythonia starts the worker's interpreter, the worker serves from
// a thread of it, and `worker.python` reaches the live objects behind handles.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Connection, type ConnectionOptions } from "../client/connection.js";
import { type PythonChoice, Worker } from "../client/worker.js";
import { LaunchError, WorkerClosedError } from "../protocol/errors.js";
import { type TransportKind, transportFactory } from "../transport/select.js";
import type { TransportFactory } from "../transport/transport.js";
import { PACKAGE_ROOT, resolvePython } from "./python.js";

/**
 * A pythonia proxy to a Python object. Attribute access and calls are awaited and cross
 * the bridge one at a time; `await proxy.valueOf()` copies a JSON-able value out.
 */
// biome-ignore lint/suspicious/noExplicitAny: pythonia proxies are untyped by nature
export type PyProxy = any;

interface PythoniaModule {
  python: ((module: string) => Promise<PyProxy>) & { exit(): void };
}

export interface PythoniaOptions extends ConnectionOptions {
  /** Interpreter path; else $ADVMOE_PYTHON, else the project's .venv. Handed to pythonia as PYTHON_BIN. */
  python?: string;
  /** `ipc` (private socket file; default on POSIX) or `tcp` (a free loopback port). */
  socket?: "ipc" | "tcp";
  /** `zeromq` (the native addon, default) or `zmtp` (pure TypeScript). */
  transport?: TransportKind;
  /** Workspace root on the worker. Default: cwd. */
  workspace?: string;
  /** torch device, e.g. `cpu` or `cuda:0`. Default: cuda when available. */
  device?: string;
  /** torch intra-op threads. */
  threads?: number;
  /** Opens the transport; overrides `transport`. */
  transportFactory?: TransportFactory;
}

/** The interpreter behind an inline worker, and pythonia proxies into it. */
export class PythonBridge implements PythonChoice {
  readonly path: string;
  readonly source: PythonChoice["source"];
  readonly #python: PythoniaModule["python"];
  readonly #inline: PyProxy;
  readonly #endpoint: string;

  constructor(choice: PythonChoice, python: PythoniaModule["python"], inline: PyProxy, endpoint: string) {
    this.path = choice.path;
    this.source = choice.source;
    this.#python = python;
    this.#inline = inline;
    this.#endpoint = endpoint;
  }

  /** Imports any module in the worker's interpreter, e.g. `await worker.python.import("torch")`. */
  import(module: string): Promise<PyProxy> {
    return this.#python(module);
  }

  /** The live object behind a handle: a model's nn.Module, a trainer's engine, a data set's splits. */
  object(target: string | { handle: string }): Promise<PyProxy> {
    return this.#inline.live(this.#endpoint, typeof target === "string" ? target : target.handle);
  }
}

/** A worker served from a thread of a pythonia-managed interpreter. */
export class PythoniaWorker extends Worker {
  readonly python: PythonBridge;
  readonly endpoint: string;
  readonly pid: number;
  readonly #stop: () => Promise<void>;

  constructor(args: {
    connection: Connection;
    python: PythonBridge;
    endpoint: string;
    pid: number;
    stop: () => Promise<void>;
  }) {
    super(args.connection);
    this.python = args.python;
    this.endpoint = args.endpoint;
    this.pid = args.pid;
    this.#stop = args.stop;
  }

  /** Stops the worker's thread and ends pythonia's interpreter (proxies stop working). */
  override async close(graceMs = 5000): Promise<void> {
    if (!this.connection.failure) {
      await this.connection.call("shutdown", {}, { timeoutMs: graceMs }).catch(() => undefined);
    }
    this.connection.close(new WorkerClosedError("worker_closed", "the inline worker was closed"));
    await this.#stop();
  }
}

const isDeno = () => typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

/**
 * Starts the worker inside an interpreter that pythonia launches, so `worker.python`
 * can inspect and change its live objects. Node only. pythonia reads PYTHON_BIN once,
 * when it is first imported: the first call fixes the interpreter for the process.
 */
export async function spawnPythoniaWorker(options: PythoniaOptions = {}): Promise<PythoniaWorker> {
  if (isDeno()) {
    throw new LaunchError(
      "launch_failed",
      "the pythonia launch mode needs Node: pythonia drives its interpreter over Node's IPC channel, which Deno does not have; use spawnWorker() under Deno",
      { runtime: "deno" },
    );
  }
  const choice = resolvePython(options.python);
  const alreadyLoaded = "__pythonBridge" in globalThis;
  if (!alreadyLoaded) process.env.PYTHON_BIN = choice.path;
  const imported = (await import("pythonia")) as unknown as PythoniaModule & { default?: PythoniaModule };
  const python = imported.python ?? imported.default?.python;
  if (!python) throw new LaunchError("launch_failed", "the pythonia package has no `python` export", {});

  let endpoint = "";
  const dir = (options.socket ?? "ipc") === "ipc" ? mkdtempSync(join(tmpdir(), "advmoe-")) : undefined;
  try {
    const sys = await python("sys");
    const executable = String(await sys.executable);
    if (resolve(executable) !== resolve(choice.path)) {
      throw new LaunchError(
        "launch_failed",
        `pythonia already runs ${executable}, not ${choice.path}: it reads PYTHON_BIN only when first imported, so one interpreter serves the whole process`,
        { python: choice, running: executable },
      );
    }
    const paths = await sys.path;
    if (!(await paths.__contains__(join(PACKAGE_ROOT, "py")))) await paths.insert(0, join(PACKAGE_ROOT, "py"));
    const inline = await python("advmoe_worker.inline");
    const key = randomBytes(32);
    const bind = dir ? `ipc://${join(dir, "worker.sock")}` : "tcp://127.0.0.1:0";
    const workspace = resolve(options.workspace ?? process.cwd());
    const ready = JSON.parse(
      String(await inline.start(bind, key.toString("hex"), workspace, options.device ?? null, options.threads ?? null)),
    ) as { endpoint: string; pid: number };
    endpoint = ready.endpoint;
    const transport = await (options.transportFactory ?? transportFactory(options.transport))(endpoint);
    const connection = new Connection(transport, key, options);
    const bridge = new PythonBridge(choice, python, inline, endpoint);
    const stop = async () => {
      await Promise.resolve(inline.stop(endpoint)).catch(() => undefined);
      python.exit();
      if (dir) rmSync(dir, { recursive: true, force: true });
    };
    return new PythoniaWorker({ connection, python: bridge, endpoint, pid: ready.pid, stop });
  } catch (err) {
    python.exit();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (err instanceof LaunchError) throw err;
    throw new LaunchError("launch_failed", `the inline worker (${choice.path}) did not start: ${String(err)}`, {
      python: choice,
      cause: String(err),
    });
  }
}
