// The transport interface: moves multipart messages; knows nothing of their meaning.

/** A bidirectional multipart-message channel to one worker. */
export interface Transport {
  /**
   * Queues one multipart message. Frames may be sent without copying: the caller must
   * not mutate them until the worker has answered the request that carries them.
   */
  send(frames: readonly Uint8Array[]): Promise<void>;
  /** Incoming multipart messages, in order, until the transport closes. */
  messages(): AsyncIterable<Uint8Array[]>;
  /**
   * Resolves once the encrypted session is set up; rejects with HandshakeError when the
   * peer refuses it (e.g. a wrong server key) or after `timeoutMs`. Only transports
   * opened with `curve` keys have it.
   */
  handshake?(timeoutMs: number): Promise<void>;
  /** Closes the channel; pending sends may be dropped. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** ZeroMQ CURVE keys, Z85 text (40 characters each). */
export interface CurveKeys {
  /** The worker's public key (`server.public` from `python -m advmoe_worker.keys`). */
  serverKey: string;
  /** This client's key pair; a fresh pair is made when left out. */
  publicKey?: string;
  secretKey?: string;
}

/** How to open a transport. A transport that cannot encrypt must refuse `curve`. */
export interface TransportOptions {
  curve?: CurveKeys;
}

/** Opens a transport to a ZeroMQ endpoint (`ipc://...` or `tcp://host:port`). */
export type TransportFactory = (endpoint: string, options?: TransportOptions) => Promise<Transport> | Transport;
