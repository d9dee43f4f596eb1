import { describe, expect, it } from "vitest";
import { defaultTransport, runtime, transportFactory } from "../../ts/transport/select.js";
import { zmtpTransport } from "../../ts/transport/zmtp.js";

describe("the default transport under Node", () => {
  it("is the pure-TypeScript client, and the native addon for a CURVE worker", () => {
    expect(runtime()).toBe("node");
    expect(defaultTransport()).toBe("zmtp");
    expect(transportFactory()).toBe(zmtpTransport);
    expect(defaultTransport({ curve: { serverKey: "x".repeat(40) } })).toBe("zeromq");
    expect(transportFactory("zeromq")).not.toBe(zmtpTransport);
  });
});
