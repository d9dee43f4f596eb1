// Transport over the native `zeromq` package (a DEALER socket); the Node default.
import { Dealer } from "zeromq";
import type { Transport } from "./transport.js";

/** A DEALER socket connected to the worker's ROUTER. */
export class ZeromqTransport implements Transport {
  readonly #socket: Dealer;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(endpoint: string) {
    // No high-water marks: the client bounds what it keeps in flight itself.
    this.#socket = new Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    this.#socket.connect(endpoint);
  }

  get closed(): boolean {
    return this.#closed;
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
    this.#socket.close();
  }
}

/** Opens a native zeromq transport. */
export function zeromqTransport(endpoint: string): Transport {
  return new ZeromqTransport(endpoint);
}
