// A ZMTP 3.1 DEALER in plain TypeScript over node:net (tcp and ipc), NULL mechanism.
// No native code, so the same transport runs in Node, Deno and Bun.
import { connect as netConnect, type Socket } from "node:net";
import { TransportError } from "../protocol/errors.js";
import { parseEndpoint, type SocketAddress } from "./endpoint.js";
import type { Transport, TransportOptions } from "./transport.js";
import {
  FLAG_COMMAND,
  FLAG_MORE,
  type Frame,
  FrameDecoder,
  FramingError,
  frameHeaderBytes,
  writeFrameHeader,
} from "./zmtp-frames.js";
import {
  DEALER_PEERS,
  encodeGreeting,
  encodeReady,
  errorReason,
  GREETING_BYTES,
  type Greeting,
  parseCommand,
  parseGreeting,
  parseReadyProperties,
  pongFor,
} from "./zmtp-greeting.js";

/** Options of the pure-TypeScript ZMTP transport; `curve` is refused (NULL mechanism only). */
export interface ZmtpOptions extends TransportOptions {
  /** How long to keep trying to connect and complete the handshake, ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Largest frame accepted from the peer, bytes; a larger one fails the transport. Default: no limit. */
  maxFrameBytes?: number;
}

// Frame bodies below this size are copied next to their headers (one buffer, one write);
// larger ones are written from the caller's memory (gathered into one writev).
const COPY_BELOW = 16 * 1024;
// Received messages held for a slow reader before the socket is paused.
const QUEUE_PAUSE = 4096;
// Reads outside a large frame's body go into the unused rest of a 256 KiB slab, never
// into bytes read before (frames view them); a new slab comes when under 64 KiB is left.
const SLAB_BYTES = 256 * 1024;
const MIN_READ = 64 * 1024;
// A refused connection is retried at this interval until the connect timeout, as libzmq does.
const RETRY_MS = 100;

type Phase = "greeting" | "ready" | "open";

/** A connected ZMTP DEALER socket. Open one with `ZmtpTransport.connect`. */
export class ZmtpTransport implements Transport {
  readonly endpoint: string;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  // The slab small reads go into, how much of it is used, and the buffer of the read in flight.
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  #reading?: Uint8Array;
  #phase: Phase = "greeting";
  #greeting = new Uint8Array(GREETING_BYTES);
  #greetingFilled = 0;
  #peer?: Greeting;
  // Frames of the message being received.
  #parts: Uint8Array[] = [];
  // Received messages not yet taken by the reader; #head indexes the next one.
  #queue: Uint8Array[][] = [];
  #head = 0;
  #paused = false;
  #wake?: () => void;
  #drain?: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void };
  #closed = false;
  #ended = false;
  #failure?: TransportError;
  #onOpen?: { resolve: () => void; reject: (err: TransportError) => void };

  private constructor(endpoint: string, address: SocketAddress, options: ZmtpOptions) {
    this.endpoint = endpoint;
    this.#decoder = new FrameDecoder(options.maxFrameBytes);
    // Reads go into buffers this transport hands out (`onread`): the rest of a large
    // frame's body, so its bytes land in place without a copy, else a 64 KiB chunk.
    const onread = {
      buffer: () => this.#nextReadBuffer(),
      callback: (n: number, buffer: Uint8Array) => {
        this.#onRead(n, buffer);
        return true; // keep reading
      },
    };
    this.#socket =
      address.kind === "tcp"
        ? netConnect({ host: address.host, port: address.port, noDelay: true, onread })
        : netConnect({ path: address.path, onread });
  }

  /**
   * Connects to a ZeroMQ ROUTER (or DEALER) at `tcp://host:port` or `ipc://path` and
   * completes the ZMTP handshake. A refused connection is retried until
   * `connectTimeoutMs`, like libzmq's reconnect; then it rejects with TransportError.
   */
  static async connect(endpoint: string, options: ZmtpOptions = {}): Promise<ZmtpTransport> {
    if (options.curve) {
      throw new TransportError(
        "transport",
        `curve: the zmtp transport speaks only ZMTP's NULL mechanism and cannot encrypt; reach a CURVE worker ` +
          `with transport: "zeromq" (under Node), or through an encrypted tunnel`,
        { reason: "unsupported", endpoint, mechanism: "CURVE" },
      );
    }
    const address = parseEndpoint(endpoint);
    const deadline = Date.now() + (options.connectTimeoutMs ?? 10_000);
    for (;;) {
      try {
        return await ZmtpTransport.#attempt(endpoint, address, options, deadline);
      } catch (err) {
        const retry = err instanceof TransportError && err.reason === "connect" && isRefused(err.cause);
        if (!retry || Date.now() + RETRY_MS >= deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  static #attempt(
    endpoint: string,
    address: SocketAddress,
    options: ZmtpOptions,
    deadline: number,
  ): Promise<ZmtpTransport> {
    let transport: ZmtpTransport;
    try {
      transport = new ZmtpTransport(endpoint, address, options);
    } catch (err) {
      return Promise.reject(connectError(endpoint, err));
    }
    const socket = transport.#socket;
    return new Promise<ZmtpTransport>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          transport.#fail(
            new TransportError("transport", `no ZMTP handshake with ${endpoint} within the connect timeout`, {
              reason: "handshake",
              endpoint,
            }),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      transport.#onOpen = {
        resolve: () => {
          clearTimeout(timer);
          resolve(transport);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      socket.once("connect", () => {
        if (address.kind === "tcp") socket.setNoDelay(true);
        socket.write(encodeGreeting());
      });
      socket.on("drain", () => transport.#onDrain());
      socket.on("end", () => transport.#onEnd());
      socket.on("error", (err) => transport.#onError(err));
      socket.on("close", () => transport.#onEnd());
    });
  }

  get closed(): boolean {
    return this.#closed || this.#ended || this.#failure !== undefined;
  }

  /** What the peer's greeting said (version, mechanism). */
  get peer(): Greeting | undefined {
    return this.#peer;
  }

  /**
   * Writes one multipart message in one write (a writev when large bodies go from the
   * caller's memory). Resolves at once while the socket's buffer has room, else when it
   * has drained: await it to pace large sends.
   */
  send(frames: readonly Uint8Array[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed || this.#ended) return Promise.reject(closedError(this.endpoint));
    if (frames.length === 0) return Promise.reject(new TypeError("send: a message needs at least one frame"));
    if (!this.#writeMessage(frames)) this.#drain ??= deferred();
    return this.#drain?.promise ?? Promise.resolve();
  }

  async *messages(): AsyncIterable<Uint8Array[]> {
    for (;;) {
      if (this.#closed) return;
      if (this.#head < this.#queue.length) {
        const message = this.#queue[this.#head]!;
        this.#queue[this.#head++] = EMPTY;
        if (this.#head === this.#queue.length) {
          this.#queue = [];
          this.#head = 0;
          if (this.#paused) {
            this.#paused = false;
            this.#socket.resume();
          }
        }
        yield message;
        continue;
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Flushes what was written, closes the connection (FIN) and ends `messages()`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref?.();
    this.#drain?.reject(closedError(this.endpoint));
    this.#drain = undefined;
    this.#wakeReader();
  }

  // ---- send ------------------------------------------------------------------------

  #writeMessage(frames: readonly Uint8Array[]): boolean {
    return this.#writeFrames(frames, 0);
  }

  #writeCommand(body: Uint8Array): void {
    if (!this.#socket.destroyed) this.#writeFrames([body], FLAG_COMMAND);
  }

  #writeFrames(frames: readonly Uint8Array[], flags: number): boolean {
    const last = frames.length - 1;
    let staged = 0;
    for (const f of frames) staged += frameHeaderBytes(f.length) + (f.length < COPY_BELOW ? f.length : 0);
    const stage = new Uint8Array(staged);
    const pieces: Uint8Array[] = [];
    let offset = 0;
    let pieceStart = 0;
    frames.forEach((f, i) => {
      offset = writeFrameHeader(stage, offset, f.length, flags | (i < last ? FLAG_MORE : 0));
      if (f.length < COPY_BELOW) {
        stage.set(f, offset);
        offset += f.length;
      } else {
        pieces.push(stage.subarray(pieceStart, offset), f);
        pieceStart = offset;
      }
    });
    if (pieceStart < offset) pieces.push(stage.subarray(pieceStart, offset));
    if (pieces.length === 1) return this.#socket.write(pieces[0]!);
    // Corked writes leave as one writev when uncorked.
    this.#socket.cork();
    let ok = true;
    for (const piece of pieces) ok = this.#socket.write(piece);
    this.#socket.uncork();
    return ok;
  }

  // ---- receive ---------------------------------------------------------------------

  #nextReadBuffer(): Uint8Array {
    const pending = this.#decoder.pendingBody;
    if (pending) return pending;
    if (this.#slab.length - this.#slabUsed < MIN_READ) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    this.#reading = this.#slab.subarray(this.#slabUsed);
    return this.#reading;
  }

  #onRead(n: number, buffer: Uint8Array): void {
    if (buffer === this.#reading) {
      // Frames may now view these bytes: the next read goes after them.
      this.#slabUsed += n;
      this.#reading = undefined;
      this.#onData(buffer.subarray(0, n));
    } else {
      this.#onBody(n);
    }
  }

  #onBody(n: number): void {
    if (this.#failure || this.#closed) return;
    try {
      this.#decoder.filled(n, (frame) => this.#onFrame(frame));
    } catch (err) {
      this.#fail(err instanceof TransportError ? err : badZmtp(this.endpoint, err));
    }
  }

  #onData(chunk: Uint8Array): void {
    if (this.#failure || this.#closed) return;
    try {
      let rest = chunk;
      if (this.#phase === "greeting") {
        const n = Math.min(rest.length, GREETING_BYTES - this.#greetingFilled);
        this.#greeting.set(rest.subarray(0, n), this.#greetingFilled);
        this.#greetingFilled += n;
        rest = rest.subarray(n);
        // A non-ZMTP peer shows itself in the first byte: fail before waiting for 64.
        if (this.#greeting[0] !== 0xff) throw handshakeError(this.endpoint, "the peer does not speak ZMTP");
        if (this.#greetingFilled < GREETING_BYTES) return;
        this.#onGreeting();
      }
      if (rest.length > 0) this.#decoder.push(rest, (frame) => this.#onFrame(frame));
    } catch (err) {
      this.#fail(err instanceof TransportError ? err : badZmtp(this.endpoint, err));
    }
  }

  #onGreeting(): void {
    const peer = parseGreeting(this.#greeting);
    if (!peer) throw handshakeError(this.endpoint, "the peer's greeting has no ZMTP signature");
    if (peer.major < 3) {
      throw handshakeError(this.endpoint, `the peer speaks ZMTP ${peer.major}.${peer.minor}; 3.0 or later is needed`);
    }
    if (peer.mechanism !== "NULL") {
      throw new TransportError(
        "transport",
        `${this.endpoint} uses the ${peer.mechanism} security mechanism; the zmtp transport speaks only NULL ` +
          `(no encryption). Connect with transport: "zeromq" for ${peer.mechanism}.`,
        { reason: "mechanism", endpoint: this.endpoint, mechanism: peer.mechanism },
      );
    }
    this.#peer = peer;
    this.#phase = "ready";
    this.#writeCommand(encodeReady({ "Socket-Type": "DEALER" }));
  }

  #onFrame(frame: Frame): void {
    if (frame.command) {
      this.#onCommand(frame.body);
      return;
    }
    if (this.#phase !== "open") throw handshakeError(this.endpoint, "the peer sent a message before READY");
    this.#parts.push(frame.body);
    if (frame.more) return;
    const message = this.#parts;
    this.#parts = [];
    this.#queue.push(message);
    if (this.#queue.length - this.#head >= QUEUE_PAUSE && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#wakeReader();
  }

  #onCommand(body: Uint8Array): void {
    const command = parseCommand(body);
    if (!command) throw handshakeError(this.endpoint, "the peer sent a malformed command");
    if (command.name === "ERROR") {
      throw new TransportError("transport", `${this.endpoint} refused the connection: ${errorReason(command.data)}`, {
        reason: "handshake",
        endpoint: this.endpoint,
      });
    }
    if (this.#phase === "ready") {
      if (command.name !== "READY") throw handshakeError(this.endpoint, `expected READY, got ${command.name}`);
      const properties = parseReadyProperties(command.data);
      const type = properties?.["socket-type"];
      if (!type || !DEALER_PEERS.includes(type)) {
        throw handshakeError(this.endpoint, `a DEALER cannot talk to a ${type ?? "peer without Socket-Type"}`);
      }
      this.#phase = "open";
      this.#onOpen?.resolve();
      this.#onOpen = undefined;
      return;
    }
    // PING carries a TTL and a context; the PONG echoes the context.
    if (command.name === "PING") this.#writeCommand(pongFor(command.data));
    // PONG, SUBSCRIBE, CANCEL and unknown commands need nothing from a DEALER.
  }

  #onDrain(): void {
    const drain = this.#drain;
    this.#drain = undefined;
    drain?.resolve();
  }

  #onEnd(): void {
    if (this.#failure || this.#ended) return;
    if (this.#closed) {
      this.#ended = true;
      return;
    }
    if (this.#phase === "greeting") {
      // libzmq reads our greeting and hangs up without a word when our mechanism is not
      // the one it requires, most often after its 10-byte signature, sometimes before.
      const signed = this.#greetingFilled >= 10;
      this.#fail(
        new TransportError(
          "transport",
          `${this.endpoint} hung up during the ZMTP greeting${signed ? " after reading ours" : ""}: a ZeroMQ peer ` +
            "does this when it requires a security mechanism other than NULL (a CURVE worker?), and the zmtp " +
            'transport speaks only NULL; use transport: "zeromq" for CURVE',
          { reason: signed ? "mechanism" : "handshake", endpoint: this.endpoint },
        ),
      );
    } else if (this.#phase !== "open") {
      this.#fail(handshakeError(this.endpoint, "the peer closed the connection during the handshake"));
    } else if (!this.#decoder.idle || this.#parts.length > 0) {
      this.#fail(
        new TransportError(
          "transport",
          `${this.endpoint} closed the connection in the middle of a message (${this.#parts.length} frame(s) received)`,
          { reason: "truncated", endpoint: this.endpoint },
        ),
      );
    } else {
      this.#ended = true;
      this.#socket.destroy();
      this.#wakeReader();
      this.#drain?.reject(closedError(this.endpoint));
      this.#drain = undefined;
    }
  }

  #onError(err: Error): void {
    if (this.#failure || this.#closed) return;
    if (this.#phase === "greeting" && this.#greetingFilled === 0 && this.#onOpen) {
      this.#fail(connectError(this.endpoint, err));
      return;
    }
    const truncated = !this.#decoder.idle || this.#parts.length > 0;
    this.#fail(
      new TransportError(
        "transport",
        `the connection to ${this.endpoint} broke${truncated ? " in the middle of a message" : ""}: ${err.message}`,
        { reason: truncated ? "truncated" : "reset", endpoint: this.endpoint },
        { cause: err },
      ),
    );
  }

  #fail(error: TransportError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    this.#onOpen?.reject(error);
    this.#onOpen = undefined;
    this.#drain?.reject(error);
    this.#drain = undefined;
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

const EMPTY: Uint8Array[] = [];

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A send's caller may not await it; a rejection must not crash the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function isRefused(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === "ECONNREFUSED" || code === "ENOENT";
}

function isPermissionError(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | undefined;
  return e?.name === "NotCapable" || e?.name === "PermissionDenied" || /--allow-\w+/.test(e?.message ?? "");
}

function connectError(endpoint: string, err: unknown): TransportError {
  const message = (err as Error)?.message ?? String(err);
  if (isPermissionError(err)) {
    return new TransportError(
      "transport",
      `cannot connect to ${endpoint}: ${message}. Under Deno, grant --allow-net (tcp and ipc), or run with -A`,
      { reason: "permission", endpoint },
      { cause: err },
    );
  }
  return new TransportError(
    "transport",
    `cannot connect to ${endpoint}: ${message}`,
    { reason: "connect", endpoint },
    {
      cause: err,
    },
  );
}

function badZmtp(endpoint: string, err: unknown): TransportError {
  return new TransportError("transport", `bad ZMTP from ${endpoint}: ${(err as Error).message}`, {
    reason: err instanceof FramingError ? err.reason : "bad_frame",
    endpoint,
  });
}

function handshakeError(endpoint: string, what: string): TransportError {
  return new TransportError("transport", `ZMTP handshake with ${endpoint} failed: ${what}`, {
    reason: "handshake",
    endpoint,
  });
}

function closedError(endpoint: string): TransportError {
  return new TransportError("transport", `the transport to ${endpoint} is closed`, { reason: "closed", endpoint });
}

/** Opens a pure-TypeScript ZMTP transport (a TransportFactory). */
export function zmtpTransport(endpoint: string, options?: ZmtpOptions): Promise<ZmtpTransport> {
  return ZmtpTransport.connect(endpoint, options);
}
