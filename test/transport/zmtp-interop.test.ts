// Both transports against raw libzmq peers (pyzmq), for the framing edge cases; and the
// pure-TypeScript transport against a peer that dies in the middle of a message.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Connection } from "../../ts/client/connection.js";
import { resolvePython } from "../../ts/launcher/python.js";
import { connectWorker } from "../../ts/launcher/spawn.js";
import { TransportError } from "../../ts/protocol/errors.js";
import { transportFactory } from "../../ts/transport/select.js";
import type { Transport } from "../../ts/transport/transport.js";
import { zmtpTransport } from "../../ts/transport/zmtp.js";
import { TRANSPORTS } from "../integration/transports.js";

const PEER = join(import.meta.dirname, "..", "fixtures", "zmq_peer.py");
const MiB = 1 << 20;

/** Starts the fixture peer; resolves with its process and the endpoint it printed. */
async function startPeer(...args: string[]): Promise<{ peer: ResultPromise; endpoint: string }> {
  const peer = execa(resolvePython().path, [PEER, ...args], { buffer: false, reject: false });
  const endpoint = await new Promise<string>((resolve, reject) => {
    createInterface({ input: peer.stdout! }).once("line", resolve);
    peer.then((r) => reject(new Error(`zmq_peer.py exited early: ${r.stderr ?? ""}`)));
  });
  return { peer, endpoint };
}

async function next(iterator: AsyncIterator<Uint8Array[]>): Promise<Uint8Array[]> {
  const { value, done } = await iterator.next();
  if (done) throw new Error("the transport ended");
  return value;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

describe.each(TRANSPORTS)("%s against a raw pyzmq ROUTER", (kind) => {
  for (const socket of ["ipc", "tcp"] as const) {
    describe(`over ${socket}`, () => {
      let dir: string;
      let peer: ResultPromise;
      let transport: Transport;
      let incoming: AsyncIterator<Uint8Array[]>;
      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), "advmoe-interop-"));
        const bind = socket === "ipc" ? `ipc://${join(dir, "peer.sock")}` : "tcp://127.0.0.1:0";
        const started = await startPeer("router", bind);
        peer = started.peer;
        transport = await transportFactory(kind)(started.endpoint);
        incoming = transport.messages()[Symbol.asyncIterator]();
      });
      afterAll(async () => {
        await transport?.send([new TextEncoder().encode("bye")]);
        await peer;
        transport?.close();
        rmSync(dir, { recursive: true, force: true });
      });

      it.each([0, 1, 255, 256, 65_536, 64 * MiB])("echoes a frame of %i bytes unchanged", async (size) => {
        const frame = new Uint8Array(randomBytes(size));
        await transport.send([new Uint8Array([1, 2, 3]), frame]);
        const [head, back] = await next(incoming);
        expect(Array.from(head!)).toEqual([1, 2, 3]);
        expect(back!.byteLength).toBe(size);
        expect(bytesEqual(back!, frame)).toBe(true);
      });

      it("echoes 100 frames of one message in order, the empty ones included", async () => {
        const frames = Array.from({ length: 100 }, (_, i) => new Uint8Array(randomBytes((i * 37) % 300)));
        await transport.send(frames);
        const back = await next(incoming);
        expect(back.length).toBe(100);
        expect(back.every((f, i) => bytesEqual(f, frames[i]!))).toBe(true);
      });

      it("keeps 500 pipelined messages in order", async () => {
        const sent = Array.from({ length: 500 }, (_, i) => new TextEncoder().encode(`m${i}`));
        await Promise.all(sent.map((m) => transport.send([m])));
        for (let i = 0; i < sent.length; i++) {
          expect(new TextDecoder().decode((await next(incoming))[0])).toBe(`m${i}`);
        }
      });
    });
  }
});

describe("the zmtp transport", () => {
  it("answers libzmq's heartbeat PINGs, so the peer keeps the connection", async () => {
    const { peer, endpoint } = await startPeer("router", "tcp://127.0.0.1:0", "--heartbeat-ms", "50");
    const transport = await zmtpTransport(endpoint);
    const incoming = transport.messages()[Symbol.asyncIterator]();
    // libzmq drops a peer that leaves its PINGs unanswered for 150 ms; wait through several.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await transport.send([new TextEncoder().encode("still here")]);
    expect(new TextDecoder().decode((await next(incoming))[0])).toBe("still here");
    await transport.send([new TextEncoder().encode("bye")]);
    await next(incoming);
    await peer;
    transport.close();
  });

  it("fails pending work with TransportError `truncated` when the peer closes mid-message", async () => {
    const { peer, endpoint } = await startPeer("truncate");
    const transport = await zmtpTransport(endpoint);
    const error = await (async () => {
      for await (const _ of transport.messages()) return new Error("a truncated message was delivered");
      return new Error("the transport ended without an error");
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).reason).toBe("truncated");
    expect((error as TransportError).message).toMatch(/in the middle of a message/);
    await expect(transport.send([new Uint8Array(1)])).rejects.toBeInstanceOf(TransportError);
    await peer;
  });

  it("rejects a call pending on a Connection with that TransportError", async () => {
    const { peer, endpoint } = await startPeer("truncate");
    const connection = new Connection(await zmtpTransport(endpoint), randomBytes(32), { heartbeatIntervalMs: 0 });
    const err = await connection.call("info").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).reason).toBe("truncated");
    expect(connection.failure).toBe(err);
    await peer;
  });

  it("refuses a CURVE peer, naming the mechanism, and a curve option, before connecting", async () => {
    const { peer, endpoint } = await startPeer("router", "tcp://127.0.0.1:0", "--curve");
    try {
      const err = await zmtpTransport(endpoint).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      // libzmq hangs up after its signature (reason `mechanism`), now and then before it.
      expect(["mechanism", "handshake"]).toContain((err as TransportError).reason);
      expect((err as TransportError).message).toMatch(/hung up during the ZMTP greeting.*CURVE/);
      const keys = { serverKey: "x".repeat(40) };
      const refused = await zmtpTransport(endpoint, { curve: keys }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TransportError);
      expect((refused as TransportError).reason).toBe("unsupported");
      const viaConnect = await connectWorker(endpoint, { key: "00".repeat(32), transport: "zmtp", curve: keys }).catch(
        (e: unknown) => e,
      );
      expect(viaConnect).toBeInstanceOf(TransportError);
      expect((viaConnect as TransportError).message).toMatch(/cannot encrypt/);
    } finally {
      peer.kill();
      await peer;
    }
  });

  it("refuses an endpoint that is not listening, after retrying until its connect timeout", async () => {
    const started = Date.now();
    const err = await zmtpTransport("tcp://127.0.0.1:1", { connectTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).reason).toBe("connect");
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });
});
