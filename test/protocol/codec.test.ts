import { readFileSync } from "node:fs";
import { Packr, pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { DecodeError, decode, encode, type Header, wireValue } from "../../ts/protocol/codec.js";
import { Signer } from "../../ts/protocol/signing.js";
import { DTYPES, type DType, type Tensor, tensor, toNumbers } from "../../ts/protocol/tensor.js";

const golden = JSON.parse(readFileSync(new URL("../fixtures/golden-frames.json", import.meta.url), "utf8")) as {
  key: string;
  messages: {
    name: string;
    frames: string[];
    header: Record<string, unknown>;
    tensors: Record<string, { dtype: DType; shape: number[]; values: (number | string | boolean)[] }>;
  }[];
};

const base = { v: 1, session: "abcdef0123456789", seq: 1, ts: 1 } as const;

function sample(dtype: DType): Tensor {
  switch (dtype) {
    case "float32":
      return tensor(new Float32Array([1.5, -2, Number.NaN, 3e38]), [2, 2]);
    case "float64":
      return tensor(new Float64Array([1e-300, -0]), [2]);
    case "float16":
    case "bfloat16":
      return tensor(new Uint16Array([0x3c00, 0xc000]), [2], dtype);
    case "int64":
      return tensor(new BigInt64Array([-(2n ** 62n), 2n ** 40n]), [1, 2]);
    case "int32":
      return tensor(new Int32Array([-7, 2 ** 31 - 1]), [2]);
    case "int16":
      return tensor(new Int16Array([-300, 300]), [2]);
    case "int8":
      return tensor(new Int8Array([-128, 127]), [2]);
    case "uint8":
      return tensor(new Uint8Array([0, 255]), [2]);
    case "bool":
      return tensor(new Uint8Array([1, 0, 1]), [3], "bool");
  }
}

describe("codec", () => {
  it.each(DTYPES)("round-trips a %s tensor bit-exactly", (dtype) => {
    const t = sample(dtype);
    const frames = encode({ ...base, kind: "request", id: 1, method: "echo", params: {} }, { t });
    expect(frames).toHaveLength(2);
    const { header, tensors } = decode(frames);
    expect(header.tensors?.t).toEqual({ dtype, shape: [...t.shape], frame: 2 });
    const back = tensors.t!;
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual(t.shape);
    expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    );
  });

  it("wraps an aligned received frame without copying", () => {
    const t = tensor(new Float32Array(16), [16]);
    const frames = encode({ ...base, kind: "reply", id: 1, result: {} }, { t });
    const back = decode(frames).tensors.t!;
    expect(back.data.buffer).toBe(t.data.buffer);
  });

  it("copies a misaligned frame once so typed-array views stay valid", () => {
    const t = tensor(new Float64Array([1, 2, 3]), [3]);
    const frames = encode({ ...base, kind: "reply", id: 1, result: {} }, { t });
    const shifted = new Uint8Array(frames[1]!.byteLength + 1).subarray(1);
    shifted.set(frames[1]!);
    const back = decode([frames[0]!, shifted]).tensors.t!;
    expect(Array.from(back.data as Float64Array)).toEqual([1, 2, 3]);
  });

  it("copies a misaligned Node Buffer frame too, whose slice() would be a view", () => {
    // The zmtp transport hands out frames as views of the Buffers the socket read.
    const t = tensor(new Int32Array([7, -8, 9]), [3]);
    const frames = encode({ ...base, kind: "reply", id: 1, result: {} }, { t });
    const shifted = Buffer.alloc(frames[1]!.byteLength + 1).subarray(1);
    shifted.set(frames[1]!);
    const back = decode([frames[0]!, shifted]).tensors.t!;
    expect(Array.from(back.data as Int32Array)).toEqual([7, -8, 9]);
    expect(back.data.buffer).not.toBe(shifted.buffer);
  });

  it("sends integers beyond 32 bits as 64-bit integers, not floats", () => {
    // msgpackr alone writes 2**40 as a float64, which Python then reads as a float.
    expect(pack(2 ** 40)[0]).toBe(0xcb);
    const [header] = encode({ ...base, kind: "request", id: 1, method: "m", params: { n: 2 ** 40, m: -(2 ** 35) } });
    const raw = new Packr({ useRecords: false, int64AsType: "bigint" }).unpack(header!) as Header;
    expect(raw.params).toEqual({ n: 2n ** 40n, m: -(2n ** 35n) });
    expect(decode([header!]).header.params).toEqual({ n: 2 ** 40, m: -(2 ** 35) });
  });

  it("refuses typed arrays in params instead of corrupting them", () => {
    // msgpackr's default pack writes a Float32Array as `length` bytes of a stale buffer.
    expect(() =>
      encode({ ...base, kind: "request", id: 1, method: "m", params: { x: new Float32Array([1, 2]) } }),
    ).toThrow(/params\.x: typed arrays cannot travel in params/);
    expect(wireValue({ b: new Uint8Array([1]) })).toEqual({ b: new Uint8Array([1]) });
  });

  it("encodes undefined as nil and drops undefined params fields", () => {
    const [header] = encode({ ...base, kind: "request", id: 1, method: "m", params: { a: undefined, b: [undefined] } });
    expect(decode([header!]).header.params).toEqual({ b: [null] });
  });

  it("writes plain maps, never msgpackr records", () => {
    const [header] = encode({ ...base, kind: "request", id: 1, method: "m", params: { a: { x: 1 }, b: { x: 2 } } });
    // 0xd4/0xd5 ext types and the 0x40-0x7f record ids only appear with records on.
    const decoded = new Packr({ useRecords: false }).unpack(header!);
    expect(decoded.params).toEqual({ a: { x: 1 }, b: { x: 2 } });
    expect(Buffer.from(header!).includes(Buffer.from([0xd4, 0x72]))).toBe(false);
  });

  it("rejects frames that do not match the tensor table", () => {
    const frames = encode({ ...base, kind: "reply", id: 1, result: {} }, { t: tensor(new Float32Array(4), [4]) });
    expect(() => decode([frames[0]!])).toThrow(DecodeError);
    expect(() => decode([frames[0]!, new Uint8Array(15)])).toThrow(/needs 16/);
    expect(() => decode([frames[0]!, frames[1]!, frames[1]!])).toThrow(DecodeError);
    expect(() => decode([new Uint8Array([0xc1])])).toThrow(DecodeError);
  });

  it("rejects tensors whose shape does not match their data", () => {
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(/holds 6 elements, the array has 5/);
    expect(() => tensor(new Uint16Array(2), [2])).toThrow(/pass `dtype`/);
  });
});

describe("golden frames shared with the worker", () => {
  const signer = new Signer(Buffer.from(golden.key, "hex"));
  it.each(golden.messages.map((m) => [m.name, m] as const))("decodes %s", (_name, message) => {
    const [signature, ...frames] = message.frames.map((hex) => new Uint8Array(Buffer.from(hex, "hex")));
    expect(signer.verify(signature!, frames)).toBe(true);
    const { header, tensors } = decode(frames);
    const { tensors: _table, ...rest } = header;
    expect(rest).toEqual(message.header);
    for (const [name, want] of Object.entries(message.tensors)) {
      const got = tensors[name]!;
      expect(got.dtype).toBe(want.dtype);
      expect(got.shape).toEqual(want.shape);
      const values = want.values.map((v) => (typeof v === "boolean" ? Number(v) : Number(v)));
      expect(toNumbers(got)).toEqual(values);
    }
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(message.tensors).sort());
  });

  it("fails verification when any byte changes", () => {
    const message = golden.messages[1]!;
    const [signature, ...frames] = message.frames.map((hex) => new Uint8Array(Buffer.from(hex, "hex")));
    const header = frames[0]!.slice();
    header[5] = header[5]! ^ 1;
    expect(signer.verify(signature!, [header, ...frames.slice(1)])).toBe(false);
    // Mode "h" covers tensor lengths, not bytes; mode "f" covers every byte.
    const longer = [frames[0]!, new Uint8Array(frames[1]!.byteLength + 1), ...frames.slice(2)];
    expect(signer.verify(signature!, longer)).toBe(false);
    const full = golden.messages[2]!.frames.map((hex) => new Uint8Array(Buffer.from(hex, "hex")));
    const flipped = full[2]!.slice();
    flipped[0] = flipped[0]! ^ 1;
    expect(signer.verify(full[0]!, [full[1]!, flipped])).toBe(false);
    expect(signer.verify(full[0]!, full.slice(1), true)).toBe(true);
    expect(signer.verify(signature!, frames, true)).toBe(false);
  });
});
