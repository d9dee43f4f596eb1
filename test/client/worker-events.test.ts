import { describe, expect, it } from "vitest";
import { Connection } from "../../ts/client/connection.js";
import { Worker } from "../../ts/client/worker.js";
import { decode, encode, type Header, PROTOCOL_VERSION } from "../../ts/protocol/codec.js";
import { CancelledError, ProtocolError } from "../../ts/protocol/errors.js";
import { Signer } from "../../ts/protocol/signing.js";
import type { Transport } from "../../ts/transport/transport.js";

const KEY = new Uint8Array(32).fill(7);

/**
 * A scripted peer speaking the real codec and signatures: it answers each request with
 * the given events, then a reply, and records the cancels it receives.
 */
function scriptedWorker(events: { event: string; data: Record<string, unknown> }[], result: Record<string, unknown>) {
  const signer = new Signer(KEY);
  const inbox: Uint8Array[][] = [];
  let wake: (() => void) | undefined;
  let seq = 0;
  const cancels: number[] = [];
  const push = (header: Omit<Header, "v" | "session" | "seq" | "ts">) => {
    const frames = encode({
      v: PROTOCOL_VERSION,
      ...header,
      session: "scripted",
      seq: ++seq,
      ts: Date.now(),
    } as Header);
    inbox.push([signer.sign(frames, false), ...frames]);
    wake?.();
  };
  const transport: Transport = {
    closed: false,
    async send(frames) {
      const { header } = decode(frames.slice(1));
      if (header.kind === "cancel") cancels.push(header.id!);
      if (header.kind !== "request") return;
      for (const e of events) push({ kind: "event", id: header.id, ...e });
      push({ kind: "reply", id: header.id, result });
    },
    async *messages() {
      while (!this.closed) {
        const next = inbox.shift();
        if (next) yield next;
        else await new Promise<void>((r) => (wake = r));
      }
    },
    close() {
      (this as { closed: boolean }).closed = true;
      wake?.();
    },
  };
  const worker = new Worker(new Connection(transport, KEY, { heartbeatIntervalMs: 0 }));
  return { worker, cancels };
}

describe("event checking in the typed client", () => {
  it("delivers events that fit their schema, typed, and resolves with the result", async () => {
    const { worker } = scriptedWorker([{ event: "progress", data: { done: 0.5, tick: 1 } }], { slept: 1, ticks: 1 });
    const call = worker.sleep({ seconds: 1 });
    const done: number[] = [];
    for await (const e of call) done.push(e.data.done);
    expect(done).toEqual([0.5]);
    expect(await call).toEqual({ slept: 1, ticks: 1 });
    worker.connection.close();
  });

  it("cancels the call and rejects with ProtocolError naming the event and field when an event breaks its schema", async () => {
    const { worker, cancels } = scriptedWorker([{ event: "progress", data: { done: "half", tick: 1 } }], {
      slept: 1,
      ticks: 1,
    });
    const err = await worker.sleep({ seconds: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).not.toBeInstanceOf(CancelledError);
    expect(err.message).toMatch(/sleep event progress: done:/);
    expect(err.details.path).toBe("done");
    expect(cancels).toHaveLength(1);
    worker.connection.close();
  });

  it("refuses an event kind its method does not declare", async () => {
    const { worker } = scriptedWorker([{ event: "step", data: {} }], { slept: 1, ticks: 1 });
    const err = await worker.sleep({ seconds: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.details).toMatchObject({ event: "step", known: ["progress"] });
    worker.connection.close();
  });

  it("lets events through unchecked when validation is off", async () => {
    const { worker } = scriptedWorker([{ event: "progress", data: { done: "half", tick: 1 } }], { slept: 1, ticks: 1 });
    const call = worker.sleep({ seconds: 1 }, { validate: false });
    const seen: unknown[] = [];
    for await (const e of call) seen.push(e.data.done);
    expect(seen).toEqual(["half"]);
    worker.connection.close();
  });

  it("rejects a result that breaks its schema with ProtocolError", async () => {
    const { worker } = scriptedWorker([], { slept: "long", ticks: 1 });
    const err = await worker.sleep({ seconds: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/sleep result: slept:/);
    worker.connection.close();
  });
});
