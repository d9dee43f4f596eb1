import { describe, expect, it } from "vitest";
import { ReplayGuard, SIGNATURE_BYTES, Signer } from "../../ts/protocol/signing.js";

describe("Signer", () => {
  const signer = new Signer(new Uint8Array(32).fill(7));
  const frames = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])];

  it("makes a mode byte plus a 32-byte digest", () => {
    const sig = signer.sign(frames);
    expect(sig).toHaveLength(SIGNATURE_BYTES);
    expect(String.fromCharCode(sig[0]!)).toBe("h");
    expect(String.fromCharCode(signer.sign(frames, true)[0]!)).toBe("f");
  });

  it("rejects another key, a truncated signature and an unknown mode", () => {
    const sig = signer.sign(frames);
    expect(new Signer(new Uint8Array(32).fill(8)).verify(sig, frames)).toBe(false);
    expect(signer.verify(sig.subarray(0, 32), frames)).toBe(false);
    const odd = Buffer.from(sig);
    odd[0] = 0x78;
    expect(signer.verify(odd, frames)).toBe(false);
  });

  it("refuses keys shorter than 16 bytes", () => {
    expect(() => new Signer(new Uint8Array(8))).toThrow(/at least 16 bytes/);
  });
});

describe("ReplayGuard", () => {
  it("accepts strictly increasing sequence numbers per session only", () => {
    const guard = new ReplayGuard(1000);
    expect(guard.accept("s", 1, 0, 0)).toBe(true);
    expect(guard.accept("s", 1, 0, 0)).toBe(false);
    expect(guard.accept("s", 3, 0, 0)).toBe(true);
    expect(guard.accept("s", 2, 0, 0)).toBe(false);
    expect(guard.accept("t", 1, 0, 0)).toBe(true);
  });

  it("rejects timestamps outside the window and malformed fields", () => {
    const guard = new ReplayGuard(1000);
    expect(guard.accept("s", 1, 0, 5000)).toBe(false);
    expect(guard.accept("", 1, 0, 0)).toBe(false);
    expect(guard.accept("s", 0, 0, 0)).toBe(false);
    expect(guard.accept("s", 1.5, 0, 0)).toBe(false);
  });
});
