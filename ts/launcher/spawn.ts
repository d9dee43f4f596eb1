// Starts a local worker process, waits for its signed ready line, and connects to it.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { execa, type ResultPromise } from "execa";
import { Connection, type ConnectionOptions } from "../client/connection.js";
import { SharedMemory, type SharedMemoryOptions } from "../client/shared-memory.js";
import { type PythonChoice, Worker } from "../client/worker.js";
import { type AdvmoeError, LaunchError, WorkerClosedError, WorkerDiedError } from "../protocol/errors.js";
import { Signer } from "../protocol/signing.js";
import { parseEndpoint } from "../transport/endpoint.js";
import { defaultTransport, type TransportKind, transportFactory } from "../transport/select.js";
import type { CurveKeys, Transport, TransportFactory } from "../transport/transport.js";
import { checkDenoPermissions } from "./permissions.js";
import { PACKAGE_ROOT, resolvePython } from "./python.js";
import { checkRestartPolicy, type RestartPolicy, SupervisedWorker } from "./supervisor.js";

/** Where a worker log line came from. */
export type LogStream = "stderr" | "stdout";

export interface SpawnOptions extends Omit<ConnectionOptions, "sharedMemory"> {
  /**
   * Large tensors travel through a private folder in /dev/shm instead of frames
   * (docs/protocol.md, Shared memory). Default: on where /dev/shm exists and can be
   * reached (Deno: with --allow-all), for request tensors of 128 MiB or more; `false`
   * sends frames only; options set the thresholds (`replyMinBytes` for replies) and the MAC.
   */
  sharedMemory?: boolean | SharedMemoryOptions;
  /** Interpreter path; else $ADVMOE_PYTHON, else the project's .venv. */
  python?: string;
  /** `ipc` (private socket file; default on POSIX) or `tcp` (a free loopback port). */
  socket?: "ipc" | "tcp";
  /** `zmtp` (pure TypeScript; the default) or `zeromq` (the native addon, Node only). */
  transport?: TransportKind;
  /** Workspace root on the worker: checkpoint and data paths must lie inside it. Default: cwd. */
  workspace?: string;
  /** torch device for the worker, e.g. `cpu` or `cuda:0`. Default: cuda when available. */
  device?: string;
  /** torch intra-op threads. */
  threads?: number;
  /** Largest message the worker accepts, in bytes. */
  maxMessageBytes?: number;
  /** The worker accepts only messages whose signature covers every byte. */
  requireFullMac?: boolean;
  /** Extra environment for the worker. */
  env?: Record<string, string>;
  /** Extra command-line arguments for the worker. */
  args?: string[];
  /** Receives the worker's log lines. Default: dropped (the last ones are kept for errors). */
  logger?: (line: string, stream: LogStream) => void;
  /** How long to wait for the ready line, ms. Default 60000. */
  readyTimeoutMs?: number;
  /** Opens the transport; overrides `transport`. */
  transportFactory?: TransportFactory;
  /**
   * Start the worker in its own process group, so a Ctrl-C meant for this process does
   * not also reach the worker (which must live on to write a checkpoint). Default false.
   */
  detached?: boolean;
  /**
   * Ranks on this machine under torchrun (`--nproc-per-node`): rank 0 serves, every rank
   * computes; NCCL on GPUs (one per rank), gloo on the CPU. Default: one process, no torchrun.
   */
  nprocPerNode?: number;
  /** Respawn the worker when its process dies, within this budget (see SupervisedWorker). */
  restart?: RestartPolicy;
}

const STDERR_LINES = 50;
// How long a closed transport waits for the worker's exit status before reporting the end.
const EXIT_WAIT_MS = 2000;

/** The fields of the worker's ready line the launcher reads. */
interface ReadyLine {
  endpoint: string;
  /** The worker's message size limit (absent from older workers). */
  max_message_bytes?: number;
}

/** A worker process started by this SDK; stopping it is tied to this object's lifetime. */
export class SpawnedWorker extends Worker {
  readonly python: PythonChoice;
  readonly endpoint: string;
  readonly pid: number;
  /** The folder large tensors travel through (removed with the worker); undefined: frames only. */
  readonly sharedMemoryDir?: string;
  readonly #stderr: string[];
  readonly #cleanupDir?: string;
  #hasExited = false;
  readonly exited: Promise<{ exitCode: number | null; signal: string | null }>;

  constructor(args: {
    connection: Connection;
    python: PythonChoice;
    endpoint: string;
    process: ResultPromise;
    stderr: string[];
    exited: Promise<{ exitCode: number | null; signal: string | null }>;
    cleanupDir?: string;
    sharedMemoryDir?: string;
  }) {
    super(args.connection);
    this.python = args.python;
    this.endpoint = args.endpoint;
    this.pid = args.process.pid ?? -1;
    this.#stderr = args.stderr;
    this.exited = args.exited;
    this.exited.then(() => {
      this.#hasExited = true;
    });
    this.#cleanupDir = args.cleanupDir;
    this.sharedMemoryDir = args.sharedMemoryDir;
  }

  /** The last lines the worker wrote to stderr. */
  get stderrTail(): string[] {
    return [...this.#stderr];
  }

  /** Sends a signal to the worker process (e.g. for tests of crash handling); false once it has exited. */
  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    if (this.#hasExited) return false;
    // By pid rather than ChildProcess.kill: under Deno 2.9 the latter delivers only the
    // first signal it is given (SIGSTOP, then SIGCONT or SIGKILL, would be lost).
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the worker: `shutdown`, then SIGTERM, then SIGKILL, each after a grace period. */
  override async close(graceMs = 5000): Promise<void> {
    const exited = this.exited;
    if (!this.connection.failure) {
      await this.connection.call("shutdown", {}, { timeoutMs: graceMs }).catch(() => undefined);
    }
    this.connection.close();
    const wait = (ms: number) =>
      Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    if (!(await wait(graceMs))) {
      this.kill("SIGTERM");
      if (!(await wait(2000))) this.kill("SIGKILL");
      await exited;
    }
    if (this.#cleanupDir) rmSync(this.#cleanupDir, { recursive: true, force: true });
  }
}

function parseReady(line: string, signer: Signer): ReadyLine | undefined {
  const match = /^ADVMOE_READY (\{.*\}) ([0-9a-f]{64})$/.exec(line.trim());
  if (!match) return undefined;
  const [, json, sig] = match as unknown as [string, string, string];
  if (signer.signText(json) !== sig) return undefined;
  return JSON.parse(json) as ReadyLine;
}

/**
 * Starts `python -m advmoe_worker` with a fresh key and a private endpoint, waits for its
 * signed ready line and returns a connected worker. Use with `await using`. With `restart`
 * the worker is supervised: a dead process is replaced by a new one (SupervisedWorker).
 */
export function spawnWorker(options: SpawnOptions & { restart: RestartPolicy }): Promise<SupervisedWorker>;
export function spawnWorker(options?: SpawnOptions): Promise<SpawnedWorker>;
export async function spawnWorker(options: SpawnOptions = {}): Promise<SpawnedWorker | SupervisedWorker> {
  if (!options.restart) return launchWorker(options);
  const policy = checkRestartPolicy(options.restart);
  const once = { ...options, restart: undefined };
  return new SupervisedWorker(await launchWorker(once), once, policy, launchWorker);
}

/**
 * The segment folder a spawned worker shares, if any: on by default where /dev/shm
 * exists and can be reached; asked for explicitly, its absence is an error.
 */
function sharedMemory(key: Uint8Array, option: SpawnOptions["sharedMemory"]): SharedMemory | undefined {
  if (option === false) return undefined;
  const settings = typeof option === "object" ? option : {};
  const shm = process.platform === "linux" ? SharedMemory.create(key, settings) : undefined;
  if (!shm && option !== undefined) {
    throw new LaunchError(
      "launch_failed",
      `spawnWorker({ sharedMemory }): ${settings.root ?? "/dev/shm"} cannot be used here ` +
        "(it needs Linux; Deno lets a program into /dev only with --allow-all)",
      { root: settings.root ?? "/dev/shm" },
    );
  }
  return shm;
}

/** Starts one worker process and connects to it. */
async function launchWorker(options: SpawnOptions): Promise<SpawnedWorker> {
  const open = chooseTransport(options);
  const useIpc = (options.socket ?? (process.platform === "win32" ? "tcp" : "ipc")) === "ipc";
  // Under Deno, a unix socket needs write access to its folder and net access to `unix:<path>`.
  checkDenoPermissions(
    [
      { name: "env" },
      { name: "read", path: PACKAGE_ROOT },
      useIpc ? { name: "write", path: tmpdir() } : { name: "net", host: "127.0.0.1" },
    ],
    "spawnWorker",
  );
  const python = resolvePython(options.python);
  checkDenoPermissions([{ name: "run", command: python.path }], "spawnWorker");
  const key = randomBytes(32);
  const signer = new Signer(key);
  const dir = useIpc ? mkdtempSync(join(tmpdir(), "advmoe-")) : undefined; // mode 0700
  const bind = dir ? `ipc://${join(dir, "worker.sock")}` : "tcp://127.0.0.1:0";
  let shm: SharedMemory | undefined;
  try {
    shm = sharedMemory(key, options.sharedMemory);
  } catch (err) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // Whoever ends the launch, the folders go.
  const removeFolders = () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    shm?.destroy();
  };
  if (dir) {
    try {
      checkDenoPermissions([{ name: "net", host: `unix:${join(dir, "worker.sock")}` }], "spawnWorker");
    } catch (err) {
      removeFolders();
      throw err;
    }
  }
  // --watch-parent: the worker exits when its stdin (a pipe from this process) closes,
  // so it does not outlive a parent that is killed or exits without closing it.
  const args = ["-m", "advmoe_worker", "--bind", bind, "--watch-parent"];
  if (options.workspace) args.push("--workspace", options.workspace);
  if (options.device) args.push("--device", options.device);
  if (options.threads) args.push("--threads", String(options.threads));
  if (options.maxMessageBytes) args.push("--max-message-bytes", String(options.maxMessageBytes));
  if (options.requireFullMac) args.push("--require-full-mac");
  if (options.fullMac) args.push("--full-mac");
  if (options.nprocPerNode !== undefined) args.push("--nproc-per-node", String(options.nprocPerNode));
  if (shm) args.push("--shm-dir", shm.dir);
  args.push(...(options.args ?? []));
  const pythonPath = [join(PACKAGE_ROOT, "py"), process.env.PYTHONPATH].filter(Boolean).join(delimiter);

  const child = execa(python.path, args, {
    env: {
      // A local worker is reached unencrypted: CURVE keys meant for a remote one stay out.
      ADVMOE_CURVE_SECRET_KEY: "",
      ADVMOE_CURVE_SECRET_KEY_FILE: "",
      ...options.env,
      ADVMOE_KEY: key.toString("hex"),
      PYTHONUNBUFFERED: "1",
      PYTHONPATH: pythonPath,
    },
    stdin: "pipe",
    buffer: false,
    reject: false,
    cleanup: true,
    detached: options.detached ?? false,
    cwd: options.workspace,
  });
  const stderr: string[] = [];
  const log = options.logger;
  const exited = child.then((r) => {
    // The launcher's socket and segment folders go with the process, whoever ends it.
    removeFolders();
    return { exitCode: r.exitCode ?? null, signal: r.signal ?? null };
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    stderr.push(line);
    if (stderr.length > STDERR_LINES) stderr.shift();
    log?.(line, "stderr");
  });

  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const ready = await new Promise<ReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new LaunchError("launch_failed", `the worker (${python.path}) was not ready within ${readyTimeoutMs} ms`, {
          python,
          stderr: [...stderr],
        }),
      );
    }, readyTimeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const parsed = parseReady(line, signer);
      if (parsed) {
        clearTimeout(timer);
        resolve(parsed);
      } else {
        log?.(line, "stdout");
      }
    });
    exited.then(({ exitCode, signal }) => {
      clearTimeout(timer);
      // Let the last stderr lines arrive before reporting them.
      setImmediate(() =>
        reject(
          new LaunchError(
            "launch_failed",
            `the worker (${python.path}, from ${python.source}) exited (code ${exitCode}, signal ${signal}) before it was ready:\n${stderr.slice(-10).join("\n")}`,
            { python, exitCode, signal, stderr: [...stderr] },
          ),
        ),
      );
    });
  }).catch((err: unknown) => {
    removeFolders();
    throw err;
  });

  let transport: Transport;
  try {
    transport = await open(ready.endpoint);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  const connection = new Connection(awaitExitOnEnd(transport, exited), key, {
    ...options,
    maxMessageBytes: ready.max_message_bytes ?? 0,
    sharedMemory: shm,
  });
  exited.then(({ exitCode, signal }) => {
    const error: AdvmoeError =
      exitCode === 0 && !signal
        ? new WorkerClosedError("worker_closed", "the worker has shut down")
        : new WorkerDiedError(
            "worker_died",
            `the worker exited (code ${exitCode}, signal ${signal})${stderr.length ? `; last stderr:\n${stderr.slice(-5).join("\n")}` : ""}`,
            { exitCode, signal, stderr: [...stderr] },
          );
    connection.close(error);
  });
  return new SpawnedWorker({
    connection,
    python,
    endpoint: ready.endpoint,
    process: child,
    stderr,
    exited,
    cleanupDir: dir,
    sharedMemoryDir: shm?.dir,
  });
}

/**
 * A transport whose end is reported only once the worker's exit is known (or after
 * 2 s): a transport that sees the socket close (zmtp does, zeromq reconnects) must not
 * turn a worker's death into a vaguer error than the exit status gives.
 */
function awaitExitOnEnd(transport: Transport, exited: Promise<unknown>): Transport {
  const settle = () =>
    Promise.race([exited, new Promise((resolve) => setTimeout(resolve, EXIT_WAIT_MS).unref())]).then(() => undefined);
  let closing = false;
  return {
    send: (frames) => transport.send(frames),
    close: () => {
      closing = true;
      transport.close();
    },
    get closed() {
      return transport.closed;
    },
    async *messages() {
      try {
        yield* transport.messages();
      } finally {
        if (!closing) await settle();
      }
    },
  };
}

function chooseTransport(options: {
  transport?: TransportKind;
  transportFactory?: TransportFactory;
  curve?: CurveKeys;
}): TransportFactory {
  if (options.transportFactory) return options.transportFactory;
  const kind = options.transport as string | undefined;
  if (kind === "ipc" || kind === "tcp") {
    throw new TypeError(
      `transport: "${kind}" names a socket kind; pass socket: "${kind}" (transport is "zmtp" or "zeromq")`,
    );
  }
  return transportFactory(options.transport ?? defaultTransport(options));
}

/** Options for connecting to a worker that is already running. */
export interface ConnectOptions extends ConnectionOptions {
  /** The worker's signing key: 32 bytes, or its hex. */
  key: Uint8Array | string;
  /** Encrypt with ZeroMQ CURVE: required by a worker started with `--allow-remote`. Needs the zeromq transport. */
  curve?: CurveKeys;
  /** How long the CURVE handshake may take, ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** `zmtp` (pure TypeScript; the default) or `zeromq` (native; the default under Node with `curve`). */
  transport?: TransportKind;
  /** Opens the transport; overrides `transport`. */
  transportFactory?: TransportFactory;
}

/**
 * Connects to a running worker (`python -m advmoe_worker`, the Docker image, a remote host).
 * With `curve`, a wrong server key rejects with HandshakeError instead of waiting forever.
 */
export async function connectWorker(endpoint: string, options: ConnectOptions): Promise<Worker> {
  const open = chooseTransport(options);
  const address = parseEndpoint(endpoint);
  checkDenoPermissions(
    address.kind === "tcp"
      ? [{ name: "net", host: `${address.host}:${address.port}` }]
      : [{ name: "net", host: `unix:${address.path}` }],
    "connectWorker",
  );
  const key = typeof options.key === "string" ? Buffer.from(options.key, "hex") : options.key;
  const transport = await open(endpoint, options.curve ? { curve: options.curve } : {});
  if (options.curve) {
    if (!transport.handshake) {
      transport.close();
      throw new TypeError("curve: this transport cannot encrypt; use the zeromq transport for a CURVE worker");
    }
    try {
      await transport.handshake(options.handshakeTimeoutMs ?? 10_000);
    } catch (err) {
      transport.close();
      throw err;
    }
  }
  const worker = new Worker(new Connection(transport, key, options));
  const info = await worker.info({ timeoutMs: options.heartbeatTimeoutMs ?? 10_000 });
  worker.connection.maxMessageBytes = info.max_message_bytes;
  return worker;
}
