// ZMTP 3.1 framing: flags byte, 1- or 8-byte big-endian size, body. Pure: no sockets.

export const FLAG_MORE = 0x01;
export const FLAG_LONG = 0x02;
export const FLAG_COMMAND = 0x04;

/** Bytes of a frame's flags and size for a body of `size` bytes. */
export function frameHeaderBytes(size: number): 2 | 9 {
  return size > 255 ? 9 : 2;
}

/** Writes a frame's flags and size into `target` at `offset`; returns the offset after it. */
export function writeFrameHeader(target: Uint8Array, offset: number, size: number, flags: number): number {
  if (size > 255) {
    target[offset] = flags | FLAG_LONG;
    // Sizes above 2^53 cannot exist in JS memory; the high word is size / 2^32.
    const view = new DataView(target.buffer, target.byteOffset + offset + 1, 8);
    view.setUint32(0, Math.floor(size / 2 ** 32));
    view.setUint32(4, size >>> 0);
    return offset + 9;
  }
  target[offset] = flags;
  target[offset + 1] = size;
  return offset + 2;
}

/** A frame as received: its body and flags. */
export interface Frame {
  body: Uint8Array;
  more: boolean;
  command: boolean;
}

/** Why a byte stream is not valid framing. */
export class FramingError extends Error {
  constructor(
    message: string,
    readonly reason: "frame_too_large" | "bad_frame",
  ) {
    super(message);
  }
}

/**
 * Turns received chunks into frames. A frame that lies whole in one chunk is a view of
 * that chunk (no copy); a frame split across chunks is gathered once into its own
 * buffer, which starts at offset 0 and so is aligned for every typed array.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  // A frame header split across chunks: up to 9 bytes.
  readonly #head = new Uint8Array(9);
  #headLength = 0;
  // A body being gathered across chunks.
  #body?: Uint8Array;
  #bodyFilled = 0;
  #flags = 0;

  constructor(maxFrameBytes = Number.MAX_SAFE_INTEGER) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** True when no frame is partly received. */
  get idle(): boolean {
    return this.#headLength === 0 && this.#body === undefined;
  }

  /**
   * Where the next received bytes should go when a large body is being gathered (the
   * unfilled rest of it), so a reader can receive straight into it; else undefined.
   */
  get pendingBody(): Uint8Array | undefined {
    return this.#body?.subarray(this.#bodyFilled);
  }

  /** Counts `n` bytes written directly into `pendingBody`; emits the frame when complete. */
  filled(n: number, onFrame: (frame: Frame) => void): void {
    this.#bodyFilled += n;
    this.#finishBody(onFrame);
  }

  /** Consumes one chunk; calls `onFrame` for each frame it completes. Throws FramingError. */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#body) {
        const n = Math.min(end - offset, this.#body.length - this.#bodyFilled);
        this.#body.set(chunk.subarray(offset, offset + n), this.#bodyFilled);
        this.#bodyFilled += n;
        offset += n;
        this.#finishBody(onFrame);
        continue;
      }
      // The header: whole in this chunk (the common case) or gathered in #head.
      let flags: number;
      let size: number;
      if (this.#headLength === 0 && end - offset >= 9) {
        flags = chunk[offset]!;
        if (flags & FLAG_LONG) {
          size = readSize(chunk, offset + 1);
          offset += 9;
        } else {
          size = chunk[offset + 1]!;
          offset += 2;
        }
      } else {
        this.#head[this.#headLength++] = chunk[offset++]!;
        const need = this.#head[0]! & FLAG_LONG ? 9 : 2;
        if (this.#headLength < need) continue;
        flags = this.#head[0]!;
        size = need === 9 ? readSize(this.#head, 1) : this.#head[1]!;
        this.#headLength = 0;
      }
      if (flags & 0xf8) throw new FramingError(`reserved frame flag bits set (0x${flags.toString(16)})`, "bad_frame");
      if (size > this.#maxFrameBytes) {
        throw new FramingError(
          `a frame of ${size} bytes exceeds the limit of ${this.#maxFrameBytes}`,
          "frame_too_large",
        );
      }
      const more = (flags & FLAG_MORE) !== 0;
      const command = (flags & FLAG_COMMAND) !== 0;
      if (end - offset >= size) {
        onFrame({ body: chunk.subarray(offset, offset + size), more, command });
        offset += size;
        continue;
      }
      try {
        this.#body = new Uint8Array(size);
      } catch (err) {
        throw new FramingError(`cannot allocate a frame of ${size} bytes: ${String(err)}`, "frame_too_large");
      }
      this.#bodyFilled = 0;
      this.#flags = flags;
    }
  }

  #finishBody(onFrame: (frame: Frame) => void): void {
    const body = this.#body;
    if (!body || this.#bodyFilled < body.length) return;
    this.#body = undefined;
    onFrame({ body, more: (this.#flags & FLAG_MORE) !== 0, command: (this.#flags & FLAG_COMMAND) !== 0 });
  }
}

function readSize(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
  const high = view.getUint32(0);
  const size = high * 2 ** 32 + view.getUint32(4);
  if (high >= 2 ** 21) throw new FramingError(`frame size ${size} is beyond 2^53 bytes`, "frame_too_large");
  return size;
}
