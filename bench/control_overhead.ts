// Control overhead: N AdvMoE steps driven one by one from TS over the wire, against the same
// N steps run in-process in Python (same seed, model and data), measured in one run.
// Usage: npx tsx bench/control_overhead.ts [--steps 40] [--repeats 3]
import { parseArgs } from "node:util";
import { execa } from "execa";
import { resolvePython } from "../ts/launcher/python.js";
import { spawnWorker } from "../ts/launcher/spawn.js";
import type { DataSpec } from "../ts/schemas/data.js";
import type { ModelSpec } from "../ts/schemas/model.js";
import type { TrainerSpec } from "../ts/schemas/trainer.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "40" },
    repeats: { type: "string", default: "3" },
    transport: { type: "string" },
    rounds: { type: "string", default: "2" },
  },
});
const steps = Number(values.steps);
const repeats = Number(values.repeats);

const config: { data: DataSpec; model: ModelSpec; trainer: TrainerSpec } = {
  data: { kind: "digits", size: 16, channels: 1 },
  model: {
    arch: "resnet18",
    width: 0.25,
    in_channels: 1,
    input_size: 16,
    ratio: 0.5,
    seed: 1,
    moe: { experts: 2, router_width: 0.25 },
  },
  trainer: { method: "advmoe", batch_size: 64, epochs: 10, seed: 1234 },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function overWire(): Promise<number[]> {
  const out: number[] = [];
  await using worker = await spawnWorker({ threads: 1, transport: values.transport as "zmtp" | "zeromq" | undefined });
  for (let r = 0; r < repeats; r++) {
    const data = await worker.createDataset(config.data);
    const model = await worker.createModel(config.model);
    const trainer = await worker.createTrainer(model, data, config.trainer);
    await trainer.step();
    const start = process.hrtime.bigint();
    for (let i = 0; i < steps; i++) await trainer.step();
    out.push(Number(process.hrtime.bigint() - start) / 1e9);
    await trainer.delete();
    await model.delete();
    await data.delete();
  }
  return out;
}

async function inProcess(): Promise<number[]> {
  const args = ["bench/control_overhead.py", "--config", JSON.stringify(config), "--steps", String(steps)];
  const { stdout } = await execa(resolvePython().path, [...args, "--repeats", String(repeats), "--threads", "1"]);
  return (JSON.parse(stdout.trim().split("\n").at(-1)!) as { seconds: number[] }).seconds;
}

// Interleave the two sides so background load hits both alike.
const wire: number[] = [];
const local: number[] = [];
const ratios: number[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  const [a, b] = [await overWire(), await inProcess()];
  wire.push(...a);
  local.push(...b);
  ratios.push(median(a) / median(b));
}
const [w, l] = [median(wire), median(local)];
console.log(`${steps} AdvMoE steps (digits 16x16, ResNet-18 width 0.25, E=2, r=0.5, batch 64, 1 thread)`);
console.log(`  over the wire from TS: ${w.toFixed(3)} s (${((1000 * w) / steps).toFixed(1)} ms/step)`);
console.log(`  in-process Python:     ${l.toFixed(3)} s (${((1000 * l) / steps).toFixed(1)} ms/step)`);
console.log(`  ratio ${(w / l).toFixed(3)} (target <= 1.02)`);
console.log(
  `  each round's ratio: ${ratios.map((r) => r.toFixed(3)).join(" ")} (rounds interleaved: the spread is this machine's noise)`,
);
