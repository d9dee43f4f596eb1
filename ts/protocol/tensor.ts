// Tensors as raw little-endian frames: typed-array views in, typed-array views out.

/** Element types that travel on the wire. */
export const DTYPES = [
  "float32",
  "float64",
  "float16",
  "bfloat16",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
] as const;
export type DType = (typeof DTYPES)[number];

/** The typed array that holds each dtype's elements (float16/bfloat16 as raw bits). */
export interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}
export type TypedArray = DTypeArrays[DType];

type ArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  new (length: number): TypedArray;
  BYTES_PER_ELEMENT: number;
};

const CTORS: Record<DType, ArrayCtor> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as unknown as Record<DType, ArrayCtor>;

/** An n-dimensional array: a dtype, a shape and a typed array in row-major order. */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DTypeArrays[D];
}

/** Bytes per element of a dtype. */
export function itemSize(dtype: DType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  throw new TypeError("tensor(): pass `dtype` for this typed array (Uint16Array holds float16 or bfloat16 bits)");
}

/**
 * Makes a tensor from a typed array and a shape; the dtype follows the array type unless
 * given (needed for float16/bfloat16 bits in a Uint16Array and for bool in a Uint8Array).
 */
export function tensor<D extends DType>(data: DTypeArrays[D], shape: readonly number[], dtype?: D): Tensor<D> {
  const resolved = (dtype ?? dtypeOf(data)) as D;
  if (!(data instanceof CTORS[resolved])) {
    throw new TypeError(`tensor(): dtype ${resolved} needs a ${CTORS[resolved].name}, got ${data.constructor.name}`);
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor(): shape entries must be integers >= 0, got ${d}`);
  }
  if (numel(shape) !== data.length) {
    throw new RangeError(
      `tensor(): shape [${shape.join(", ")}] holds ${numel(shape)} elements, the array has ${data.length}`,
    );
  }
  return { dtype: resolved, shape: [...shape], data };
}

/** A view of the tensor's bytes (no copy) for sending as a frame. */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Wraps a received frame as a tensor without copying when the frame's address is
 * aligned to the item size; a misaligned frame is copied once.
 */
export function tensorFromBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  const ctor = CTORS[dtype];
  const size = ctor.BYTES_PER_ELEMENT;
  const length = numel(shape);
  if (bytes.byteLength !== length * size) {
    throw new RangeError(
      `frame has ${bytes.byteLength} bytes, ${dtype} x [${shape.join(", ")}] needs ${length * size}`,
    );
  }
  // `new Uint8Array(view)` copies (a Buffer's `slice()` would not); the copy starts at 0.
  const source = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  return { dtype, shape: [...shape], data: new ctor(source.buffer, source.byteOffset, length) as never };
}

function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const bfScratch = new DataView(new ArrayBuffer(4));
function bfloat16ToNumber(bits: number): number {
  bfScratch.setUint32(0, bits << 16);
  return bfScratch.getFloat32(0);
}

/** The tensor's elements as plain numbers (int64 converted, float16/bfloat16 decoded). */
export function toNumbers(t: Tensor): number[] {
  const out = new Array<number>(t.data.length);
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i] as number | bigint;
    if (t.dtype === "float16") out[i] = halfToNumber(v as number);
    else if (t.dtype === "bfloat16") out[i] = bfloat16ToNumber(v as number);
    else out[i] = Number(v);
  }
  return out;
}
