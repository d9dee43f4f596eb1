// Transport over the native `zeromq` package (a DEALER socket): Node only; the default for CURVE.
import { curveKeyPair, Dealer } from "zeromq";
import { HandshakeError } from "../protocol/errors.js";
import type { CurveKeys, Transport, TransportOptions } from "./transport.js";

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/** A DEALER socket connected to the worker's ROUTER. */
export class ZeromqTransport implements Transport {
  readonly #socket: Dealer;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #handshake?: Promise<void>;

  constructor(endpoint: string, options: TransportOptions = {}) {
    // No high-water marks: the client bounds what it keeps in flight itself.
    this.#socket = new Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    if (options.curve) {
      const keys = curveOptions(options.curve);
      this.#socket.curveServerKey = keys.serverKey;
      this.#socket.curvePublicKey = keys.publicKey;
      this.#socket.curveSecretKey = keys.secretKey;
      // Watched before connecting, so the first handshake's outcome is never missed.
      this.#handshake = this.#watchHandshake();
    }
    this.#socket.connect(endpoint);
  }

  get closed(): boolean {
    return this.#closed;
  }

  handshake(timeoutMs: number): Promise<void> {
    if (!this.#handshake) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HandshakeError("handshake_failed", `no CURVE handshake with the worker within ${timeoutMs} ms`, {
              timeoutMs,
            }),
          ),
        timeoutMs,
      );
    });
    return Promise.race([this.#handshake, timeout]).finally(() => clearTimeout(timer));
  }

  async #watchHandshake(): Promise<void> {
    for await (const event of this.#socket.events) {
      if (event.type === "handshake") return;
      if (event.type.startsWith("handshake:error")) {
        const error = "error" in event ? (event.error as Error & { code?: string }) : undefined;
        throw new HandshakeError(
          "handshake_failed",
          `the CURVE handshake with the worker failed (${event.type}${error?.code ? ` ${error.code}` : ""}): ` +
            "check the worker's public key, and that the worker runs with a CURVE secret key",
          { event: event.type, reason: error?.code },
        );
      }
      if (event.type === "end") break;
    }
    throw new HandshakeError("handshake_failed", "the transport closed before the CURVE handshake");
  }

  send(frames: readonly Uint8Array[]): Promise<void> {
    // zeromq allows one send in progress per socket: chain them.
    const next = this.#writing.then(() => {
      if (this.#closed) return;
      return this.#socket.send(frames as Uint8Array[]);
    });
    this.#writing = next.catch(() => undefined);
    return next;
  }

  async *messages(): AsyncIterable<Uint8Array[]> {
    try {
      for await (const frames of this.#socket) yield frames;
    } catch (err) {
      if (!this.#closed) throw err;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handshake?.catch(() => undefined);
    this.#socket.close();
  }
}

function curveOptions(curve: CurveKeys): Required<CurveKeys> {
  const pair = curve.publicKey && curve.secretKey ? curve : curveKeyPair();
  if (!curve.publicKey !== !curve.secretKey) {
    throw new TypeError("curve: give both publicKey and secretKey, or neither (a fresh pair is made)");
  }
  const keys = { serverKey: curve.serverKey, publicKey: pair.publicKey!, secretKey: pair.secretKey! };
  for (const [name, key] of Object.entries(keys)) {
    if (typeof key !== "string" || !Z85_KEY.test(key)) {
      throw new TypeError(`curve.${name} must be a Z85 key of 40 characters, got ${JSON.stringify(key)?.slice(0, 60)}`);
    }
  }
  return keys;
}

/** Opens a native zeromq transport, encrypted with CURVE when `options.curve` is given. */
export function zeromqTransport(endpoint: string, options?: TransportOptions): Transport {
  return new ZeromqTransport(endpoint, options);
}
