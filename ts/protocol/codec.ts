// Pure encode/decode of protocol messages: [header, ...tensor frames] (docs/protocol.md).
import { Packr } from "msgpackr";
import { DTYPES, type DType, itemSize, numel, type Tensor, tensorBytes, tensorFromBytes } from "./tensor.js";

export const PROTOCOL_VERSION = 1;
export const KINDS = ["request", "reply", "event", "error", "cancel", "heartbeat"] as const;
export type Kind = (typeof KINDS)[number];

/** Where a shared-memory segment holds a tensor's bytes, and their MAC. */
export interface SegmentRef {
  name: string;
  bytes: number;
  mac: "aes-256-gmac" | "hmac-sha256";
  nonce: Uint8Array;
  tag: Uint8Array;
}

/** A tensor table entry: where a tensor's bytes are (a frame or a segment) and how to read them. */
export interface TensorEntry {
  dtype: DType;
  shape: number[];
  frame?: number;
  shm?: SegmentRef;
}

/** Writes a tensor's bytes to shared memory, or returns undefined to send them as a frame. */
export type PlaceSegment = (bytes: Uint8Array) => SegmentRef | undefined;
/** Reads (and checks) the segment a table entry names; `bytes` is what dtype and shape need. */
export type ReadSegment = (ref: SegmentRef, bytes: number) => Uint8Array;

/** The msgpack header of every message. */
export interface Header {
  v: number;
  kind: Kind;
  id: number | null;
  session: string;
  seq: number;
  ts: number;
  method?: string;
  params?: Record<string, unknown>;
  /** On a request: the worker may put reply tensors of `min_bytes` or more in segments, under `mac`. */
  shm?: { mac: SegmentRef["mac"]; min_bytes: number };
  result?: Record<string, unknown>;
  event?: string;
  data?: Record<string, unknown>;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  tensors?: Record<string, TensorEntry>;
}

/** A decoded message: the header and the tensors, which view the received frames. */
export interface Message {
  header: Header;
  tensors: Record<string, Tensor>;
}

// Records are an msgpackr extension Python cannot read; undefined must be nil.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  // "auto": a 64-bit integer decodes as a number when it is safe, else as a bigint
  // (supported at run time, missing from msgpackr's type declarations).
  int64AsType: "auto" as "bigint",
  encodeUndefinedAsNil: true,
  variableMapSize: true,
});

const TWO_32 = 2 ** 32;

/**
 * Copies a params value into a form msgpack carries faithfully: integers that do not
 * fit 32 bits become BigInt (msgpackr would write them as floats), and typed arrays
 * other than bytes are refused (msgpackr writes them as stale buffers): tensors travel
 * as frames.
 */
export function wireValue(value: unknown, path = "params"): unknown {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && Math.abs(value) >= TWO_32 ? BigInt(value) : value;
  }
  if (value === null || typeof value !== "object") return value;
  if (ArrayBuffer.isView(value)) {
    if (value instanceof Uint8Array) return value;
    throw new TypeError(`${path}: typed arrays cannot travel in params; pass them as tensors`);
  }
  if (Array.isArray(value)) return value.map((v, i) => wireValue(v, `${path}[${i}]`));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = wireValue(v, `${path}.${k}`);
  }
  return out;
}

/**
 * Header bytes followed by one frame per tensor (views of the tensors' memory); with
 * `place`, the tensors it accepts go to shared memory and only their entries travel.
 */
export function encode(
  header: Omit<Header, "tensors">,
  tensors?: Record<string, Tensor>,
  place?: PlaceSegment,
): Uint8Array[] {
  const frames: Uint8Array[] = [new Uint8Array()];
  const full: Header = { ...header };
  if (full.params) full.params = wireValue(full.params) as Record<string, unknown>;
  if (tensors && Object.keys(tensors).length > 0) {
    const table: Record<string, TensorEntry> = {};
    for (const [name, t] of Object.entries(tensors)) {
      const bytes = tensorBytes(t);
      const shm = place?.(bytes);
      if (shm) {
        table[name] = { dtype: t.dtype, shape: [...t.shape], shm };
        continue;
      }
      table[name] = { dtype: t.dtype, shape: [...t.shape], frame: frames.length + 1 };
      frames.push(bytes);
    }
    full.tensors = table;
  }
  frames[0] = packr.pack(full);
  return frames;
}

/**
 * Thrown when a frame list cannot be decoded. `header` is set when the header itself was
 * sound and a tensor failed (e.g. a segment that does not match its MAC), so the call it
 * answers can be told.
 */
export class DecodeError extends Error {
  constructor(
    message: string,
    readonly header?: Header,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function toNumber(value: unknown): unknown {
  return typeof value === "bigint" && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/**
 * Decodes [header, ...tensor frames] (signature already stripped and checked); entries
 * that name a segment are read through `read`, and refused without one.
 */
export function decode(frames: readonly Uint8Array[], read?: ReadSegment): Message {
  const raw = frames[0];
  if (!raw) throw new DecodeError("message has no header frame");
  let header: Header;
  try {
    header = packr.unpack(raw) as Header;
  } catch (err) {
    throw new DecodeError(`header is not valid msgpack: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new DecodeError("header must be a msgpack map");
  }
  if (header.v !== PROTOCOL_VERSION) throw new DecodeError(`unsupported protocol version ${String(header.v)}`);
  if (!(KINDS as readonly string[]).includes(header.kind)) throw new DecodeError(`unknown kind ${String(header.kind)}`);
  header.id = toNumber(header.id ?? null) as number | null;
  header.seq = toNumber(header.seq) as number;
  const tensors: Record<string, Tensor> = {};
  // Most messages carry no tensors: no table to walk, no set to build.
  if (header.tensors === undefined && frames.length === 1) return { header, tensors };
  const rest = frames.slice(1);
  const used = new Set<number>();
  for (const [name, entry] of Object.entries(header.tensors ?? {})) {
    if (!(DTYPES as readonly string[]).includes(entry.dtype)) throw new DecodeError(`tensor ${name}: bad dtype`);
    if (entry.frame === undefined && entry.shm !== undefined) {
      tensors[name] = readTensor(name, entry, header, read);
      continue;
    }
    const frame = entry.frame === undefined ? undefined : rest[entry.frame - 2];
    if (!frame || used.has(entry.frame as number)) {
      throw new DecodeError(`tensor ${name}: bad frame index ${entry.frame}`);
    }
    used.add(entry.frame as number);
    tensors[name] = tensorFromBytes(entry.dtype, entry.shape.map(Number), frame);
  }
  if (used.size !== rest.length) throw new DecodeError(`${rest.length} tensor frames, ${used.size} in the table`);
  return { header, tensors };
}

function readTensor(name: string, entry: TensorEntry, header: Header, read: ReadSegment | undefined): Tensor {
  if (!read) throw new DecodeError(`tensor ${name} names a shared-memory segment, and this client has none`, header);
  const shape = entry.shape.map(Number);
  try {
    return tensorFromBytes(entry.dtype, shape, read(entry.shm as SegmentRef, numel(shape) * itemSize(entry.dtype)));
  } catch (err) {
    throw new DecodeError(`tensor ${name}: ${(err as Error).message}`, header, { cause: err });
  }
}
