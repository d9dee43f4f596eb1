// HMAC-SHA256 signatures over frames, and replay rejection (docs/protocol.md, Signing).
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";

export const DIGEST_BYTES = 32;
export const SIGNATURE_BYTES = 1 + DIGEST_BYTES;
const MODE_HEADER = 0x68; // "h": header and frame lengths
const MODE_FULL = 0x66; // "f": every byte

/** Signs and verifies frame lists with one shared key. */
export class Signer {
  // A KeyObject: createHmac with raw key bytes imports the key anew on every call,
  // which costs more than hashing a small header.
  readonly #key: KeyObject;
  constructor(key: Uint8Array) {
    if (key.byteLength < 16) throw new RangeError("signing key must be at least 16 bytes");
    this.#key = createSecretKey(Buffer.from(key));
  }

  /** The signature frame for [header, ...tensor frames]. */
  sign(frames: readonly Uint8Array[], full = false): Buffer {
    return this.#sign(frames, full ? MODE_FULL : MODE_HEADER);
  }

  /** True when `signature` is a valid signature of `frames` (constant-time compare). */
  verify(signature: Uint8Array, frames: readonly Uint8Array[], requireFull = false): boolean {
    if (signature.byteLength !== SIGNATURE_BYTES) return false;
    const mode = signature[0] as number;
    if (mode !== MODE_HEADER && mode !== MODE_FULL) return false;
    if (requireFull && mode !== MODE_FULL) return false;
    return timingSafeEqual(signature, this.#sign(frames, mode));
  }

  /** Hex HMAC of a text, for the worker's ready line. */
  signText(text: string): string {
    return createHmac("sha256", this.#key).update(text).digest("hex");
  }

  #sign(frames: readonly Uint8Array[], mode: number): Buffer {
    const mac = createHmac("sha256", this.#key);
    const out = Buffer.allocUnsafe(SIGNATURE_BYTES);
    out[0] = mode;
    if (mode === MODE_HEADER) {
      // Mode byte, lengths and the header's bytes: small, so hashed in one update.
      const header = frames[0]?.byteLength ?? 0;
      const input = Buffer.allocUnsafe(1 + 8 * frames.length + header);
      input[0] = mode;
      let at = 1;
      for (let i = 0; i < frames.length; i++) {
        const frame = frames[i] as Uint8Array;
        writeLength(input, at, frame.byteLength);
        at += 8;
        if (i === 0) {
          input.set(frame, at);
          at += frame.byteLength;
        }
      }
      mac.update(input);
    } else {
      mac.update(out.subarray(0, 1));
      const length = Buffer.allocUnsafe(8);
      for (const frame of frames) {
        writeLength(length, 0, frame.byteLength);
        mac.update(length);
        mac.update(frame);
      }
    }
    out.set(mac.digest(), 1);
    return out;
  }
}

/** A little-endian u64 frame length, without going through BigInt. */
function writeLength(buf: Buffer, at: number, length: number): void {
  buf.writeUInt32LE(length >>> 0, at);
  buf.writeUInt32LE(Math.floor(length / 2 ** 32), at + 4);
}

/** Tracks the peer's sequence numbers: anything not strictly newer is a replay. */
export class ReplayGuard {
  readonly #last = new Map<string, number>();
  readonly #windowMs: number;
  constructor(windowMs = 300_000) {
    this.#windowMs = windowMs;
  }

  accept(session: unknown, seq: unknown, ts: unknown, nowMs = Date.now()): boolean {
    if (typeof session !== "string" || session.length === 0 || session.length > 128) return false;
    if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 1) return false;
    if (typeof ts !== "number" || Math.abs(nowMs - ts) > this.#windowMs) return false;
    const last = this.#last.get(session);
    if (last !== undefined && seq <= last) return false;
    this.#last.set(session, seq);
    return true;
  }
}
