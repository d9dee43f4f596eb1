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
  /** Closes the channel; pending sends may be dropped. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** Opens a transport to a ZeroMQ endpoint (`ipc://...` or `tcp://host:port`). */
export type TransportFactory = (endpoint: string) => Promise<Transport> | Transport;
