// One signed protocol session over a transport: requests, events, replies, heartbeats.
import { randomBytes } from "node:crypto";
import {
  DecodeError,
  decode,
  encode,
  type Header,
  type PlaceSegment,
  PROTOCOL_VERSION,
  type ReadSegment,
} from "../protocol/codec.js";
import {
  AdvmoeError,
  CancelledError,
  ProtocolError,
  TimeoutError,
  TooLargeError,
  WorkerClosedError,
  WorkerDiedError,
  workerError,
} from "../protocol/errors.js";
import { ReplayGuard, Signer } from "../protocol/signing.js";
import type { Tensor } from "../protocol/tensor.js";
import type { Transport } from "../transport/transport.js";
import type { SharedMemory } from "./shared-memory.js";

/** An event streamed by a request before its reply. */
export interface WorkerEvent {
  /** Event name: `progress`, `log`, `metrics`, `warning`, ... */
  event: string;
  data: Record<string, unknown>;
  tensors: Record<string, Tensor>;
}

/** A reply: the method's result and any tensors it returned. */
export interface Reply<R = Record<string, unknown>> {
  result: R;
  tensors: Record<string, Tensor>;
}

/** Per-call options. */
export interface CallOptions {
  /** Tensors sent as raw frames; do not mutate them until the call settles. */
  tensors?: Record<string, Tensor>;
  /** Aborting sends `cancel`; the call then rejects with CancelledError. */
  signal?: AbortSignal;
  /** Milliseconds before the call rejects with TimeoutError (and is cancelled). */
  timeoutMs?: number;
  /** Called for each streamed event. */
  onEvent?: (event: WorkerEvent) => void;
}

export interface ConnectionOptions {
  /** Sign tensor bytes too (docs/protocol.md, Signing). Default false. */
  fullMac?: boolean;
  /** Milliseconds between heartbeats. Default 1000. */
  heartbeatIntervalMs?: number;
  /** Silence after which the worker counts as dead. Default 10000. */
  heartbeatTimeoutMs?: number;
  /** Default per-call timeout in ms; 0 = none. Default 0. */
  timeoutMs?: number;
  /**
   * The worker's message size limit, when known (its ready line, or `info`): a request
   * over it is refused here with TooLargeError, because the worker's socket drops such a
   * message unanswered. 0 = unknown, nothing checked. Default 0.
   */
  maxMessageBytes?: number;
  /**
   * A folder shared with a local worker (`spawnWorker` makes one): request tensors of at
   * least its `minBytes`, and reply tensors of at least its `replyMinBytes`, travel as
   * segments there instead of frames. The worker must have been started with it
   * (`--shm-dir`). Default: none, frames only.
   */
  sharedMemory?: SharedMemory;
}

interface Pending {
  method: string;
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
  onEvent?: (event: WorkerEvent) => void;
  /** Clears the call's timer and abort listener, where it has them. */
  cleanup?: () => void;
  /** Keeps sent tensor memory alive and unmutated until the worker answers. */
  frames: readonly Uint8Array[];
  /** Segments this request wrote, removed once it settles. */
  segments?: string[];
}

/** Counters a client keeps about what it received. */
export interface ConnectionStats {
  received: number;
  droppedUnsigned: number;
  droppedReplay: number;
  undecodable: number;
  orphans: number;
}

/** A signed session with one worker; many requests in flight, correlated by id. */
export class Connection {
  readonly #transport: Transport;
  readonly #signer: Signer;
  readonly #guard = new ReplayGuard();
  readonly #options: Required<Omit<ConnectionOptions, "sharedMemory">>;
  readonly #shm?: SharedMemory;
  readonly #session = randomBytes(8).toString("hex");
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #nextId = 1;
  #lastHeard = Date.now();
  #heartbeat?: NodeJS.Timeout;
  #failure?: AdvmoeError;
  readonly stats: ConnectionStats = { received: 0, droppedUnsigned: 0, droppedReplay: 0, undecodable: 0, orphans: 0 };
  /** Resolves when the connection ends; never rejects. */
  readonly closed: Promise<AdvmoeError>;
  #settleClosed!: (err: AdvmoeError) => void;

  constructor(transport: Transport, key: Uint8Array, options: ConnectionOptions = {}) {
    this.#transport = transport;
    this.#signer = new Signer(key);
    this.#options = {
      fullMac: options.fullMac ?? false,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 0,
      maxMessageBytes: options.maxMessageBytes ?? 0,
    };
    this.#shm = options.sharedMemory;
    this.closed = new Promise((resolve) => {
      this.#settleClosed = resolve;
    });
    void this.#receiveLoop();
    this.#startHeartbeat();
  }

  /** Why the connection ended, once it has. */
  get failure(): AdvmoeError | undefined {
    return this.#failure;
  }

  /** The worker's message size limit in bytes, once known (0 = unknown). */
  get maxMessageBytes(): number {
    return this.#options.maxMessageBytes;
  }

  set maxMessageBytes(bytes: number) {
    this.#options.maxMessageBytes = bytes;
  }

  /** The folder shared with the worker, if tensors may travel through shared memory. */
  get sharedMemory(): SharedMemory | undefined {
    return this.#shm;
  }

  /** Number of requests awaiting their reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends a request and resolves with its reply; rejects with a typed error. */
  call(method: string, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const segments: string[] = [];
    let frames: Uint8Array[];
    try {
      frames = this.#request(id, method, params, options.tensors, segments);
    } catch (err) {
      this.#removeSegments(segments);
      return Promise.reject(err);
    }
    const limit = this.#options.maxMessageBytes;
    if (limit > 0) {
      const bytes = frames.reduce((sum, f) => sum + f.byteLength, 0);
      if (bytes > limit) {
        this.#removeSegments(segments);
        return Promise.reject(
          new TooLargeError(
            "too_large",
            `${method}: the request is ${bytes} bytes, over the worker's limit of ${limit} (max_message_bytes); it was not sent`,
            { bytes, limit },
          ),
        );
      }
    }
    const { signal, onEvent } = options;
    if (signal?.aborted) {
      this.#removeSegments(segments);
      return Promise.reject(new CancelledError("cancelled", `${method} was cancelled before it was sent`, { id }));
    }
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    return new Promise<Reply>((resolve, reject) => {
      const pending: Pending = { method, resolve, reject, onEvent, frames };
      if (segments.length > 0) pending.segments = segments;
      // Abort and timeout closures only for the calls that ask for them: a plain call
      // allocates its promise, its frames and this record, nothing more.
      if (signal || timeoutMs > 0) this.#watch(id, pending, signal, timeoutMs);
      this.#pending.set(id, pending);
      this.#transport.send(frames).catch((err: unknown) => {
        this.#settle(id);
        reject(new WorkerClosedError("worker_closed", `could not send ${method}: ${String(err)}`, {}, { cause: err }));
      });
    });
  }

  #watch(id: number, pending: Pending, signal: AbortSignal | undefined, timeoutMs: number): void {
    let timeout: NodeJS.Timeout | undefined;
    const onAbort = () => {
      this.#send({ kind: "cancel", id });
      this.#settle(id);
      pending.reject(new CancelledError("cancelled", `${pending.method} was cancelled by the caller`, { id }));
    };
    pending.cleanup = () => {
      if (timeout) clearTimeout(timeout);
      signal?.removeEventListener("abort", onAbort);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs > 0) {
      timeout = setTimeout(() => {
        this.#send({ kind: "cancel", id });
        this.#settle(id);
        pending.reject(
          new TimeoutError("timeout", `${pending.method} did not finish within ${timeoutMs} ms`, { id, timeoutMs }),
        );
      }, timeoutMs);
    }
  }

  /** Forgets a pending call, its timers and its segments; its promise is settled by the caller. */
  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending) {
      this.#pending.delete(id);
      pending.cleanup?.();
      if (pending.segments) this.#removeSegments(pending.segments);
    }
    return pending;
  }

  /** A signed request; tensors the shared folder wants are written there (names into `segments`). */
  #request(
    id: number,
    method: string,
    params: Record<string, unknown>,
    tensors: Record<string, Tensor> | undefined,
    segments: string[],
  ): Uint8Array[] {
    const shm = this.#shm;
    if (!shm) return this.#frames({ kind: "request", id, method, params }, tensors);
    const place = (bytes: Uint8Array) => {
      if (!shm.wants(bytes)) return undefined;
      const ref = shm.write(bytes);
      segments.push(ref.name);
      return ref;
    };
    const header: Omit<Header, "v" | "session" | "seq" | "ts"> = { kind: "request", id, method, params };
    if (shm.replyMinBytes !== undefined) header.shm = { mac: shm.mac, min_bytes: shm.replyMinBytes };
    return this.#frames(header, tensors, place);
  }

  #removeSegments(names: readonly string[]): void {
    for (const name of names) this.#shm?.remove(name);
  }

  /** Sends already-framed bytes as they are (for protocol tests: unsigned or garbage input). */
  sendRaw(frames: readonly Uint8Array[]): Promise<void> {
    return this.#transport.send(frames);
  }

  /** Waits for the reply to a request sent with `sendRaw` under `id` (for protocol tests). */
  awaitReply(id: number, method = "raw"): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject, frames: [] });
    });
  }

  /** Signs [header, ...tensor frames] with this session's key (for protocol tests). */
  sign(frames: readonly Uint8Array[]): Buffer {
    return this.#signer.sign(frames, this.#options.fullMac);
  }

  /** Builds a signed, numbered message (for protocol tests). */
  frame(header: Omit<Header, "v" | "session" | "seq" | "ts">, tensors?: Record<string, Tensor>): Uint8Array[] {
    return this.#frames(header, tensors);
  }

  /** Ends the session: pending calls reject with `error` (default WorkerClosedError). */
  close(error?: AdvmoeError): void {
    if (this.#failure) return;
    this.#failure = error ?? new WorkerClosedError("worker_closed", "the connection to the worker is closed");
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(this.#failure);
    this.#transport.close();
    this.#settleClosed(this.#failure);
  }

  #frames(
    header: Omit<Header, "v" | "session" | "seq" | "ts">,
    tensors?: Record<string, Tensor>,
    place?: PlaceSegment,
  ): Uint8Array[] {
    const frames = encode(
      { v: PROTOCOL_VERSION, ...header, session: this.#session, seq: ++this.#seq, ts: Date.now() } as Header,
      tensors,
      place,
    );
    frames.unshift(this.#signer.sign(frames, this.#options.fullMac));
    return frames;
  }

  #send(header: Omit<Header, "v" | "session" | "seq" | "ts">): void {
    if (this.#failure) return;
    this.#transport.send(this.#frames(header)).catch(() => undefined);
  }

  #startHeartbeat(): void {
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.#options;
    if (heartbeatIntervalMs <= 0) return;
    this.#heartbeat = setInterval(() => {
      const silence = Date.now() - this.#lastHeard;
      if (silence > heartbeatTimeoutMs) {
        this.close(
          new WorkerDiedError("worker_died", `the worker sent nothing for ${silence} ms (heartbeat timeout)`, {
            exitCode: null,
            signal: null,
            stderr: [],
          }),
        );
        return;
      }
      this.#send({ kind: "heartbeat", id: null });
    }, heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.#transport.messages()) this.#onFrames(frames);
    } catch (err) {
      // A transport's own typed error (e.g. TransportError `truncated`) reaches pending calls as it is.
      this.close(
        err instanceof AdvmoeError
          ? err
          : new WorkerClosedError("worker_closed", `transport failed: ${String(err)}`, {}, { cause: err }),
      );
      return;
    }
    this.close(new WorkerClosedError("worker_closed", "the worker closed the connection"));
  }

  readonly #readSegment: ReadSegment = (ref, bytes) => {
    if (!this.#shm) throw new Error("this client has no shared-memory folder");
    return this.#shm.read(ref, bytes);
  };

  /**
   * A signed message whose tensors could not be read (a segment missing, or changed after
   * it was announced): its call fails with ProtocolError, and its other segments go.
   */
  #onBadTensors(header: Header, err: DecodeError): void {
    for (const entry of Object.values(header.tensors ?? {})) {
      if (typeof entry.shm?.name === "string") this.#shm?.remove(entry.shm.name);
    }
    if (!this.#guard.accept(header.session, header.seq, header.ts)) {
      this.stats.droppedReplay++;
      return;
    }
    const id = typeof header.id === "bigint" ? undefined : header.id;
    const pending = id == null ? undefined : this.#settle(id);
    pending?.reject(
      new ProtocolError(
        "protocol",
        `${pending.method}: the worker's ${header.kind} could not be read: ${err.message}`,
        {
          id,
        },
        { cause: err },
      ),
    );
  }

  #onFrames(frames: Uint8Array[]): void {
    this.stats.received++;
    const signature = frames[0];
    const rest = frames.slice(1);
    if (!signature || rest.length === 0 || !this.#signer.verify(signature, rest)) {
      this.stats.droppedUnsigned++;
      return;
    }
    let message: ReturnType<typeof decode>;
    try {
      message = decode(rest, this.#readSegment);
    } catch (err) {
      if (err instanceof DecodeError) {
        this.stats.undecodable++;
        if (err.header) this.#onBadTensors(err.header, err);
        return;
      }
      throw err;
    }
    const { header, tensors } = message;
    if (!this.#guard.accept(header.session, header.seq, header.ts)) {
      this.stats.droppedReplay++;
      return;
    }
    this.#lastHeard = Date.now();
    if (header.kind === "heartbeat") return;
    const id = header.id;
    const pending = id === null ? undefined : this.#pending.get(id);
    if (!pending || id === null) {
      this.stats.orphans++;
      return;
    }
    if (header.kind === "event") {
      pending.onEvent?.({ event: String(header.event), data: header.data ?? {}, tensors });
    } else if (header.kind === "reply") {
      this.#settle(id);
      pending.resolve({ result: header.result ?? {}, tensors });
    } else if (header.kind === "error") {
      this.#settle(id);
      pending.reject(workerError(header.error, pending.method));
    }
  }
}

/**
 * A running call: `await` it for its result, or iterate its events first. Events are
 * buffered, so none is lost if iteration starts late; iteration ends with the call and
 * throws the call's error. `reply` also carries the tensors the reply brought.
 */
export class CallStream<R, E = WorkerEvent> implements PromiseLike<R>, AsyncIterable<E> {
  /** The reply: result and tensors. */
  readonly reply: Promise<Reply<R>>;
  readonly #buffered: E[] = [];
  #wake?: () => void;
  #done = false;

  constructor(start: (onEvent: (event: E) => void) => Promise<Reply<R>>) {
    this.reply = start((event) => {
      this.#buffered.push(event);
      this.#wake?.();
    });
    const finish = () => {
      this.#done = true;
      this.#wake?.();
    };
    this.reply.then(finish, finish);
  }

  // biome-ignore lint/suspicious/noThenProperty: a CallStream is awaitable on purpose, like execa's result promise
  then<T1 = R, T2 = never>(
    onFulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
    // biome-ignore lint/suspicious/noExplicitAny: the same signature as Promise.then, so handlers written for promises fit
    onRejected?: ((reason: any) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.reply.then((reply) => reply.result).then(onFulfilled, onRejected);
  }

  // biome-ignore lint/suspicious/noExplicitAny: as Promise.catch
  catch<T = never>(onRejected?: ((reason: any) => T | PromiseLike<T>) | null): Promise<R | T> {
    return this.then(undefined, onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<R> {
    return this.then().finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<E, void, undefined> {
    while (true) {
      const next = this.#buffered.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#done) {
        await this.reply; // rethrows the call's error
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
