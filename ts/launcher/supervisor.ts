// A spawned worker that is respawned when its process dies, within a restart budget.
import type { Connection } from "../client/connection.js";
import { type PythonChoice, Worker } from "../client/worker.js";
import { CancelledError, InvalidSpecError, WorkerClosedError, WorkerDiedError } from "../protocol/errors.js";
import { GaveUpEvent, RestartEvent, type SupervisorEvent, type SupervisorEventData } from "../schemas/events.js";
import type { SpawnedWorker, SpawnOptions } from "./spawn.js";

/** When and how often a dead worker is respawned. */
export interface RestartPolicy {
  /** Respawns allowed over the worker's life, an integer >= 0. */
  maxRestarts: number;
  /** Wait before the first respawn, ms (default 1000); each further one waits twice the one before. */
  backoffMs?: number;
}

type Launch = (options: SpawnOptions) => Promise<SpawnedWorker>;
type Listener<K extends SupervisorEvent["event"]> = (data: SupervisorEventData<K>) => void;

const MAX_BACKOFF_MS = 60_000;

/** Checks a restart policy; InvalidSpecError names the field and the rule. */
export function checkRestartPolicy(policy: RestartPolicy): Required<RestartPolicy> {
  const { maxRestarts, backoffMs = 1000 } = policy;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) {
    throw new InvalidSpecError("invalid_spec", `restart.maxRestarts: expected an integer >= 0, got ${maxRestarts}`, {
      path: "restart.maxRestarts",
      rule: "int_min_0",
      received: maxRestarts,
    });
  }
  if (!Number.isFinite(backoffMs) || backoffMs < 0) {
    throw new InvalidSpecError("invalid_spec", `restart.backoffMs: expected a number >= 0, got ${backoffMs}`, {
      path: "restart.backoffMs",
      rule: "min_0",
      received: backoffMs,
    });
  }
  return { maxRestarts, backoffMs };
}

/**
 * A worker whose process is replaced when it dies (a signal, a crash, a missed heartbeat),
 * up to `maxRestarts` times. Each replacement is a new generation: handles made before it
 * raise StaleHandleError, since their objects died with the old process. Listen with
 * `on("restart" | "gave_up", ...)` or iterate `events()`. A process that exits with code 0
 * (a `shutdown`) is not restarted.
 */
export class SupervisedWorker extends Worker {
  readonly policy: Required<RestartPolicy>;
  readonly #launch: Launch;
  readonly #options: SpawnOptions;
  #current: SpawnedWorker;
  #generation = 0;
  #restarts = 0;
  #closing = false;
  #gaveUp?: WorkerDiedError;
  #relaunching?: Promise<void>;
  #backoff?: { timer: NodeJS.Timeout; resolve: () => void };
  readonly #listeners = new Set<(event: SupervisorEvent) => void>();
  readonly #waiters = new Set<() => void>();

  constructor(first: SpawnedWorker, options: SpawnOptions, policy: Required<RestartPolicy>, launch: Launch) {
    super(first.connection);
    this.#current = first;
    this.#options = options;
    this.policy = policy;
    this.#launch = launch;
    this.#watch(first);
  }

  override get connection(): Connection {
    return this.#current.connection;
  }

  override get generation(): number {
    return this.#generation;
  }

  override get supervised(): boolean {
    return true;
  }

  /** Restarts made so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The process serving now. */
  get current(): SpawnedWorker {
    return this.#current;
  }

  get pid(): number {
    return this.#current.pid;
  }

  get python(): PythonChoice {
    return this.#current.python;
  }

  get endpoint(): string {
    return this.#current.endpoint;
  }

  /** The exit of the process serving now. */
  get exited(): Promise<{ exitCode: number | null; signal: string | null }> {
    return this.#current.exited;
  }

  /** The last lines the current process wrote to stderr. */
  get stderrTail(): string[] {
    return this.#current.stderrTail;
  }

  /** Sends a signal to the current process (e.g. for tests of crash handling). */
  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    return this.#current.kill(signal);
  }

  /** Calls `listener` with each event of kind `event`; returns the function that stops it. */
  on<K extends SupervisorEvent["event"]>(event: K, listener: Listener<K>): () => void {
    const wrapped = (e: SupervisorEvent) => {
      if (e.event === event) (listener as (data: unknown) => void)(e.data);
    };
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  /** The supervisor's events from now on, in order; ends after `gave_up` or `close()`. */
  async *events(): AsyncGenerator<SupervisorEvent, void, undefined> {
    const queue: SupervisorEvent[] = [];
    let wake: (() => void) | undefined;
    const listener = (e: SupervisorEvent) => {
      queue.push(e);
      wake?.();
    };
    this.#listeners.add(listener);
    const stop = () => wake?.();
    this.#waiters.add(stop);
    try {
      while (true) {
        const next = queue.shift();
        if (next) {
          yield next;
          if (next.event === "gave_up") return;
          continue;
        }
        if (this.#closing || this.#gaveUp) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.#listeners.delete(listener);
      this.#waiters.delete(stop);
    }
  }

  override waitForRestart(generation: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        if (this.#generation > generation) resolve();
        else if (this.#gaveUp) reject(this.#gaveUp);
        else if (this.#closing) reject(new WorkerClosedError("worker_closed", "the supervised worker was closed"));
        else if (signal?.aborted)
          reject(new CancelledError("cancelled", "waiting for the worker's restart was cancelled"));
        else return false;
        return true;
      };
      if (check()) return;
      const waiter = () => {
        if (check()) {
          this.#waiters.delete(waiter);
          signal?.removeEventListener("abort", waiter);
        }
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", waiter, { once: true });
    });
  }

  /** Stops supervising and stops the current process (`shutdown`, then signals). */
  override async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    if (this.#backoff) {
      clearTimeout(this.#backoff.timer);
      this.#backoff.resolve();
    }
    this.#wakeWaiters();
    await this.#relaunching;
    await this.#current.close(graceMs);
  }

  #watch(worker: SpawnedWorker): void {
    // A worker that stops answering heartbeats is alive but useless: end it, so it is replaced.
    void worker.connection.closed.then((error) => {
      if (!this.#closing && error instanceof WorkerDiedError && worker === this.#current) worker.kill("SIGKILL");
    });
    void worker.exited.then(({ exitCode, signal }) => {
      if (this.#closing || worker !== this.#current || (exitCode === 0 && !signal)) return;
      this.#relaunching = this.#relaunch(exitCode, signal).finally(() => {
        this.#relaunching = undefined;
      });
    });
  }

  async #relaunch(exitCode: number | null, signal: string | null): Promise<void> {
    let failure = `the worker exited (code ${exitCode}, signal ${signal})`;
    while (this.#restarts < this.policy.maxRestarts) {
      const waited = Math.min(this.policy.backoffMs * 2 ** this.#restarts, MAX_BACKOFF_MS);
      await new Promise<void>((resolve) => {
        this.#backoff = { timer: setTimeout(resolve, waited), resolve };
      });
      this.#backoff = undefined;
      if (this.#closing) return;
      this.#restarts++;
      let next: SpawnedWorker;
      try {
        next = await this.#launch(this.#options);
      } catch (err) {
        failure = `restart ${this.#restarts} failed: ${err instanceof Error ? err.message : String(err)}`;
        continue;
      }
      if (this.#closing) {
        await next.close();
        return;
      }
      this.#current = next;
      this.#generation++;
      this.#watch(next);
      this.#emit({
        event: "restart",
        data: RestartEvent.parse({
          attempt: this.#restarts,
          restarts_left: this.policy.maxRestarts - this.#restarts,
          generation: this.#generation,
          exit_code: exitCode,
          signal,
          pid: next.pid,
          endpoint: next.endpoint,
          waited_ms: waited,
        }),
      });
      return;
    }
    const data = GaveUpEvent.parse({
      restarts: this.#restarts,
      max_restarts: this.policy.maxRestarts,
      exit_code: exitCode,
      signal,
      reason: `${failure}; the restart budget (${this.policy.maxRestarts}) is spent`,
    });
    const error = new WorkerDiedError(
      "worker_died",
      `the supervised worker gave up after ${data.restarts} of ${data.max_restarts} restarts: ${data.reason}`,
      { exitCode, signal, stderr: this.#current.stderrTail, restarts: data.restarts },
    );
    this.#gaveUp = error;
    this.#emit({ event: "gave_up", data });
  }

  #emit(event: SupervisorEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
    this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
