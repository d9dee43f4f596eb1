import { describe, expect, it } from "vitest";
import { parseEndpoint } from "../../ts/transport/endpoint.js";
import {
  FLAG_COMMAND,
  FLAG_MORE,
  type Frame,
  FrameDecoder,
  FramingError,
  frameHeaderBytes,
  writeFrameHeader,
} from "../../ts/transport/zmtp-frames.js";
import {
  encodeGreeting,
  encodeReady,
  parseCommand,
  parseGreeting,
  parseReadyProperties,
  pongFor,
} from "../../ts/transport/zmtp-greeting.js";

/** The wire bytes of frames: headers and bodies back to back. */
function wire(frames: { body: Uint8Array; flags: number }[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + frameHeaderBytes(f.body.length) + f.body.length, 0));
  let offset = 0;
  for (const f of frames) {
    offset = writeFrameHeader(out, offset, f.body.length, f.flags);
    out.set(f.body, offset);
    offset += f.body.length;
  }
  return out;
}

function decodeAll(chunks: Uint8Array[]): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (const chunk of chunks) decoder.push(chunk, (f) => frames.push(f));
  expect(decoder.idle).toBe(true);
  return frames;
}

const body = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

describe("ZMTP frames", () => {
  it("uses a 1-byte size up to 255 bytes and an 8-byte big-endian size from 256", () => {
    const short = new Uint8Array(2);
    writeFrameHeader(short, 0, 255, FLAG_MORE);
    expect(Array.from(short)).toEqual([0x01, 255]);
    const long = new Uint8Array(9);
    writeFrameHeader(long, 0, 256, 0);
    expect(Array.from(long)).toEqual([0x02, 0, 0, 0, 0, 0, 0, 1, 0]);
    const huge = new Uint8Array(9);
    writeFrameHeader(huge, 0, 2 ** 33 + 5, 0);
    expect(Array.from(huge)).toEqual([0x02, 0, 0, 0, 2, 0, 0, 0, 5]);
  });

  it("decodes the same frames whatever the chunk boundaries", () => {
    const frames = [
      { body: body(0), flags: FLAG_MORE },
      { body: body(1), flags: FLAG_MORE },
      { body: body(255), flags: FLAG_MORE },
      { body: body(256), flags: FLAG_MORE },
      { body: body(3000), flags: 0 },
      { body: body(7), flags: FLAG_COMMAND },
    ];
    const bytes = wire(frames);
    for (let cut = 0; cut <= bytes.length; cut += 1) {
      const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
      const got = decodeAll(chunks);
      expect(got.map((f) => [f.body.length, f.more, f.command])).toEqual([
        [0, true, false],
        [1, true, false],
        [255, true, false],
        [256, true, false],
        [3000, false, false],
        [7, false, true],
      ]);
      expect(got.every((f, i) => Buffer.from(f.body).equals(frames[i]!.body))).toBe(true);
    }
    // One byte at a time.
    const single = decodeAll(Array.from(bytes, (b) => new Uint8Array([b])));
    expect(single.map((f) => f.body.length)).toEqual([0, 1, 255, 256, 3000, 7]);
  });

  it("hands out a frame inside one chunk as a view and gathers a split one into its own buffer", () => {
    const bytes = wire([
      { body: body(100), flags: FLAG_MORE },
      { body: body(1000), flags: 0 },
    ]);
    const frames = decodeAll([bytes.subarray(0, 500), bytes.subarray(500)]);
    expect(frames[0]!.body.buffer).toBe(bytes.buffer); // a view of the read chunk
    expect(frames[1]!.body.buffer).not.toBe(bytes.buffer); // gathered...
    expect(frames[1]!.body.byteOffset).toBe(0); // ...at offset 0: aligned for any typed array
  });

  it("lets a reader fill a large pending body in place", () => {
    const bytes = wire([{ body: body(10_000), flags: 0 }]);
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    decoder.push(bytes.subarray(0, 100), (f) => frames.push(f));
    const pending = decoder.pendingBody!;
    expect(pending.length).toBe(10_000 - 91);
    pending.set(bytes.subarray(100));
    decoder.filled(pending.length, (f) => frames.push(f));
    expect(Array.from(frames[0]!.body)).toEqual(Array.from(body(10_000)));
  });

  it("rejects reserved flag bits and frames over the limit", () => {
    expect(() => new FrameDecoder().push(new Uint8Array([0x08, 0]), () => undefined)).toThrow(FramingError);
    const big = wire([{ body: body(300), flags: 0 }]);
    expect(() => new FrameDecoder(299).push(big, () => undefined)).toThrow(/exceeds the limit of 299/);
  });
});

describe("ZMTP greeting and commands", () => {
  it("greets as a ZMTP 3.1 client with the NULL mechanism, zero padding and as-server 0", () => {
    const g = encodeGreeting();
    expect(g.length).toBe(64);
    expect(Array.from(g.subarray(0, 12))).toEqual([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1]);
    expect(new TextDecoder().decode(g.subarray(12, 16))).toBe("NULL");
    expect(g.subarray(16).every((b) => b === 0)).toBe(true); // mechanism padding, as-server 0, filler
    expect(parseGreeting(g)).toEqual({ major: 3, minor: 1, mechanism: "NULL", asServer: false });
    expect(parseGreeting(new Uint8Array(64))).toBeUndefined();
  });

  it("writes READY with the command name's and the property name's length bytes", () => {
    const ready = encodeReady({ "Socket-Type": "DEALER" });
    const text = new TextDecoder().decode(ready);
    expect(ready[0]).toBe(5);
    expect(text.slice(1, 6)).toBe("READY");
    expect(ready[6]).toBe("Socket-Type".length);
    expect(Array.from(ready.subarray(18, 22))).toEqual([0, 0, 0, 6]);
    const command = parseCommand(ready)!;
    expect(command.name).toBe("READY");
    expect(parseReadyProperties(command.data)).toEqual({ "socket-type": "DEALER" });
    expect(parseReadyProperties(new Uint8Array([20, 1, 2]))).toBeUndefined();
  });

  it("answers a PING with a PONG that echoes its context", () => {
    const ping = new Uint8Array([0, 10, 0xaa, 0xbb]); // TTL 1 s, then the context
    const pong = parseCommand(pongFor(ping))!;
    expect(pong.name).toBe("PONG");
    expect(Array.from(pong.data)).toEqual([0xaa, 0xbb]);
  });
});

describe("endpoints", () => {
  it("parses tcp and ipc endpoints and refuses others, naming the form", () => {
    expect(parseEndpoint("tcp://127.0.0.1:5555")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 5555 });
    expect(parseEndpoint("tcp://[::1]:9")).toEqual({ kind: "tcp", host: "::1", port: 9 });
    expect(parseEndpoint("ipc:///tmp/a/worker.sock")).toEqual({ kind: "ipc", path: "/tmp/a/worker.sock" });
    expect(parseEndpoint("ipc://@abstract")).toEqual({ kind: "ipc", path: "\0abstract" });
    expect(() => parseEndpoint("inproc://x")).toThrow(/expected tcp:\/\/host:port or ipc:\/\/path/);
    expect(() => parseEndpoint("tcp://host:0")).toThrow(/port must be 1-65535/);
  });
});
