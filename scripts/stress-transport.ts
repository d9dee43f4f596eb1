// Stress of one transport through the SDK against a real worker: sequential round trips,
// timeouts, cancels, 64 MiB tensors and a long training run with events. Each stage
// prints one line; a stage that makes no progress for --stall-ms fails as stalled.
// For `zeromq` a first stage drives a bare zeromq DEALER against a pyzmq ROUTER, with
// no SDK timers around it (--raw-timeouts sets its socket timeouts). Exit 0 when all pass.
//   deno run -A scripts/stress-transport.ts --transport zmtp
//   deno run -A scripts/stress-transport.ts --transport zeromq   (the native addon under Deno)
//   npx tsx scripts/stress-transport.ts --transport zeromq
// With --write FILE, the printed lines replace this runtime and transport's section of FILE.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import {
  CancelledError,
  PACKAGE_ROOT,
  resolvePython,
  runtime,
  spawnWorker,
  TimeoutError,
  type Transport,
  type TransportKind,
  tensor,
  transportFactory,
} from "advmoe";
import { writeSection } from "./markdown-section.ts";

const { values } = parseArgs({
  options: {
    transport: { type: "string", default: "zmtp" },
    socket: { type: "string", default: "ipc" },
    rounds: { type: "string", default: "50000" },
    cancels: { type: "string", default: "200" },
    tensors: { type: "string", default: "20" },
    epochs: { type: "string", default: "3" },
    "stall-ms": { type: "string", default: "30000" },
    "raw-rounds": { type: "string", default: "5000" },
    "raw-timeouts": { type: "boolean", default: false },
    write: { type: "string" },
  },
});
const kind = values.transport as TransportKind;
const versionOf = () =>
  runtime() === "deno"
    ? (globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno
    : process.versions.node;
const stallMs = Number(values["stall-ms"]);
const MiB = 1 << 20;

/** Rejects when `work` makes no progress report for stallMs. */
async function stage(name: string, work: (progress: (done: number) => void) => Promise<string>): Promise<boolean> {
  const started = performance.now();
  let last = Date.now();
  let done = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (Date.now() - last > stallMs) reject(new Error(`stalled: no progress for ${stallMs} ms after ${done} done`));
    }, 500);
  });
  const progress = (n: number) => {
    done = n;
    last = Date.now();
  };
  try {
    const detail = await Promise.race([work(progress), stalled]);
    say(`ok    ${name}: ${detail} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    return true;
  } catch (err) {
    say(`FAIL  ${name}: ${(err as Error).name}: ${(err as Error).message}`);
    return false;
  } finally {
    clearInterval(timer);
  }
}

// Under Deno the native addon is not offered by `transport`; it is loaded here directly.
const open =
  kind === "zeromq" && runtime() === "deno"
    ? async (endpoint: string): Promise<Transport> => (await import("advmoe/zeromq")).zeromqTransport(endpoint)
    : transportFactory(kind);
const report: string[] = [];
const say = (line: string) => {
  console.log(line);
  report.push(line);
};
say(`${runtime()} ${versionOf()} ${kind} over ${values.socket}`);
const results: boolean[] = [];

if (kind === "zeromq") {
  results.push(
    await stage(`bare zeromq DEALER, ${values["raw-rounds"]} round trips`, async (progress) => {
      const { Dealer } = await import("zeromq");
      const peer = spawn(resolvePython().path, [
        join(PACKAGE_ROOT, "test/fixtures/zmq_peer.py"),
        "router",
        "tcp://127.0.0.1:0",
      ]);
      try {
        const endpoint = await new Promise<string>((resolve) =>
          createInterface({ input: peer.stdout }).once("line", resolve),
        );
        const timeouts = values["raw-timeouts"] ? { receiveTimeout: 5000, sendTimeout: 5000 } : {};
        const socket = new Dealer({ linger: 0, ...timeouts });
        socket.connect(endpoint);
        const rounds = Number(values["raw-rounds"]);
        for (let i = 0; i < rounds; i++) {
          await socket.send(`m${i}`);
          const [reply] = await socket.receive();
          if (String(reply) !== `m${i}`) throw new Error(`round trip ${i} got ${String(reply)}`);
          progress(i + 1);
        }
        socket.close();
        return `${rounds} replies`;
      } finally {
        peer.kill();
      }
    }),
  );
}

const worker = await spawnWorker({
  transportFactory: open,
  socket: values.socket as "ipc" | "tcp",
  maxMessageBytes: 80 * MiB,
  threads: 1,
});

results.push(
  await stage(`${values.rounds} sequential round trips`, async (progress) => {
    const rounds = Number(values.rounds);
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t = performance.now();
      const reply = await worker.request("echo", { note: `r${i}` });
      times.push(performance.now() - t);
      if (reply.result.note !== `r${i}`) throw new Error(`round trip ${i} got ${reply.result.note}`);
      if (i % 1000 === 0) progress(i);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))]!.toFixed(2);
    const slow = times.filter((t) => t >= 100).length;
    return `${rounds} replies in order; ms p50 ${at(0.5)}, p99 ${at(0.99)}, max ${at(1)}; ${slow} took >= 100 ms`;
  }),
);

results.push(
  await stage(`${values.cancels} timeouts and cancels`, async (progress) => {
    const n = Number(values.cancels);
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) {
        const err = await worker.sleep({ seconds: 30, tick: 0.005 }, { timeoutMs: 20 }).reply.catch((e) => e);
        if (!(err instanceof TimeoutError)) throw new Error(`timeout ${i}: got ${err}`);
      } else {
        const controller = new AbortController();
        const call = worker.sleep({ seconds: 30, tick: 0.005 }, { signal: controller.signal });
        await call[Symbol.asyncIterator]().next();
        controller.abort();
        const err = await call.reply.catch((e) => e);
        if (!(err instanceof CancelledError)) throw new Error(`cancel ${i}: got ${err}`);
      }
      progress(i + 1);
    }
    const after = await worker.request("sleep", { seconds: 0.01 }, { timeoutMs: 10_000 });
    return `all typed; the worker serves on (${after.result.ticks} ticks)`;
  }),
);

results.push(
  await stage(`${values.tensors} echoes of 64 MiB float32`, async (progress) => {
    const data = new Float32Array((64 * MiB) / 4).map((_, i) => i % 65_521);
    for (let i = 0; i < Number(values.tensors); i++) {
      data[0] = i;
      const back = (await worker.echo({ x: tensor(data, [data.length]) })).x!.data as Float32Array;
      if (back[0] !== i || back[12_345] !== 12_345 || back.length !== data.length) throw new Error(`echo ${i} differs`);
      progress(i + 1);
    }
    return "bit-exact at the probed positions";
  }),
);

results.push(
  await stage(`AdvMoE training, ${values.epochs} epochs with events`, async (progress) => {
    const data = await worker.createDataset({
      kind: "synthetic",
      num_classes: 3,
      size: 8,
      channels: 3,
      train_size: 480,
      test_size: 48,
      seed: 3,
    });
    const model = await worker.createModel({
      arch: "resnet18",
      width: 0.0625,
      ratio: 0.5,
      input_size: 8,
      num_classes: 3,
      seed: 5,
      moe: { experts: 2, router_width: 0.25 },
    });
    const trainer = await worker.createTrainer(model, data, {
      method: "advmoe",
      epochs: Number(values.epochs),
      batch_size: 16,
      attack: { steps: 1 },
      seed: 11,
    });
    const run = trainer.run();
    let events = 0;
    for await (const _ of run) {
      events++;
      progress(events);
    }
    await run;
    return `${events} events`;
  }),
);

await worker.close();
const failed = results.filter((ok) => !ok).length;
say(failed === 0 ? "all stages passed" : `${failed} stage(s) failed`);
if (values.write) {
  writeSection(values.write, `scripts/stress-transport.ts ${runtime()} ${kind}`, ["```", ...report, "```"].join("\n"));
}
// A stalled native socket can keep the process alive: leave explicitly.
process.exit(failed === 0 ? 0 : 1);
