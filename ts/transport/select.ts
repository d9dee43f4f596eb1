// Chooses the transport implementation: the pure-TypeScript ZMTP client or the native zeromq addon.
import { TransportError } from "../protocol/errors.js";
import type { Transport, TransportFactory, TransportOptions } from "./transport.js";
import { zmtpTransport } from "./zmtp.js";

/** `zmtp`: pure TypeScript over node:net (Node, Deno, Bun). `zeromq`: the native addon (Node). */
export type TransportKind = "zmtp" | "zeromq";

/** The JavaScript runtime this process runs on. */
export function runtime(): "node" | "deno" | "bun" {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

/**
 * The default transport: the pure-TypeScript one, which measured faster than the native
 * addon under Node too (BENCHMARKS.md: about 0.8x its round-trip time, and about 60% of
 * its client CPU per pipelined request); the native addon under Node for a CURVE worker,
 * which only it can reach.
 */
export function defaultTransport(options: { curve?: unknown } = {}): TransportKind {
  return runtime() === "node" && options.curve ? "zeromq" : "zmtp";
}

/**
 * The factory for a transport kind (default: `defaultTransport()`). The `zeromq` package
 * is imported only here, on first use, so runtimes that never choose it never load it.
 * Under Deno `zeromq` is refused: its addon stalls there (scripts/stress-transport.ts).
 */
export function transportFactory(kind: TransportKind = defaultTransport()): TransportFactory {
  if (kind === "zmtp") return zmtpTransport;
  if (kind !== "zeromq") {
    throw new TypeError(`transport: expected "zmtp" or "zeromq", got ${JSON.stringify(kind)}`);
  }
  if (runtime() === "deno") {
    throw new TransportError(
      "transport",
      'transport: "zeromq" is not offered under Deno: with Deno 2.9 its native addon stops at the 500th ' +
        "receive of a bare socket and crashes when socket timeouts are set (denoland/deno#36317). " +
        'Use the default, "zmtp".',
      { reason: "unsupported", runtime: "deno" },
    );
  }
  return async (endpoint: string, options?: TransportOptions): Promise<Transport> => {
    const { zeromqTransport } = await import("./zeromq.js");
    return zeromqTransport(endpoint, options);
  };
}
