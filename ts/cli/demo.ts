// `advmoe demo`, the main job: AdvMoE against AT(MoE) and S-Dense on scikit-learn's digits,
// trained on the CPU by a local worker, then a robustness report for each.
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { Model } from "../client/model.js";
import { spawnWorker } from "../launcher/spawn.js";
import type { EvaluationReport, EvaluationSpec } from "../schemas/evaluation.js";
import type { ModelSpec } from "../schemas/model.js";
import type { TrainerSpec } from "../schemas/trainer.js";

export interface DemoOptions {
  python?: string;
  out: string;
  quick: boolean;
}

/** One contender: a model and the method that trains it. */
interface Contender {
  name: string;
  model: ModelSpec;
  trainer: TrainerSpec;
}

const EPS = 8 / 255;

function contenders(epochs: number): Contender[] {
  // ResNet-18 (CIFAR stem) at a width that trains in minutes on two cores. MoE: E = 2
  // experts of ratio 0.5; S-Dense: the dense model at ratio 0.5, the same active width.
  const base: ModelSpec = { arch: "resnet18", width: 0.25, in_channels: 1, input_size: 16, num_classes: 10, seed: 1 };
  const moe: ModelSpec = { ...base, ratio: 0.5, moe: { experts: 2, router_width: 0.25 } };
  const common: TrainerSpec = {
    method: "advmoe",
    epochs,
    batch_size: 64,
    attack: { eps: EPS, steps: 2, step_size: 5 / 255 },
    optimizer: { name: "sgd", lr: 0.05 },
    schedule: { name: "cosine" },
    seed: 1234,
  };
  return [
    { name: "AdvMoE", model: moe, trainer: { ...common, method: "advmoe" } },
    { name: "AT (MoE)", model: moe, trainer: { ...common, method: "at-moe" } },
    { name: "S-Dense TRADES", model: { ...base, ratio: 0.5 }, trainer: { ...common, method: "trades" } },
  ];
}

function evaluation(samples: number | null): EvaluationSpec {
  return {
    attacks: [
      { name: "pgd", norm: "linf", eps: EPS, steps: 10, step_size: 2 / 255, random_start: true, seed: 0 },
      { name: "router", eps: EPS, steps: 10, step_size: 2 / 255, seed: 0 },
      { name: "pathway", eps: EPS, steps: 10, step_size: 2 / 255, seed: 0 },
    ],
    batch_size: 128,
    max_samples: samples,
    per_class: true,
    seed: 0,
  };
}

const pct = (x: number | null | undefined) =>
  x === null || x === undefined ? "   -  " : `${(100 * x).toFixed(1)}%`.padStart(6);
const megaMacs = (x: number) => `${(x / 1e6).toFixed(2)}M`;

interface Row {
  name: string;
  method: string;
  info: Awaited<ReturnType<Model["describe"]>>;
  report: EvaluationReport;
  trainSeconds: number;
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const started = Date.now();
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const epochs = options.quick ? 1 : 8;
  const isTTY = process.stdout.isTTY;

  // One core stays with this process and the OS: torch's thread wake-ups cost more than
  // they give on tiny models when every core is busy.
  const threads = Math.max(1, availableParallelism() - 1);
  await using worker = await spawnWorker({ python: options.python, workspace: out, threads });
  const info = await worker.info();
  console.log(
    `worker: torch ${info.torch} on ${info.default_device}, ${info.cpu_threads} threads (${worker.python.path})`,
  );
  const data = await worker.createDataset({ kind: "digits", size: 16, channels: 1, val_fraction: 0.1, split_seed: 0 });
  const d = data.info;
  console.log(
    `data: scikit-learn digits at 16x16, ${d.train} train / ${d.val} val / ${d.test} test, ${d.num_classes} classes`,
  );

  const rows: Row[] = [];
  for (const c of contenders(epochs)) {
    const model = await worker.createModel(c.model);
    const trainer = await worker.createTrainer(model, data, c.trainer);
    const steps = trainer.info.steps_per_epoch * epochs;
    console.log(
      `\n${c.name}: ${c.trainer.method} for ${epochs} epochs (${steps} steps, phases ${trainer.info.cycle.join("/")})`,
    );
    const t0 = Date.now();
    const run = trainer.run({ epochs });
    let done = 0;
    for await (const event of run) {
      if (event.event === "step") {
        done++;
        const m = event.data;
        if (isTTY) {
          const bar = "#".repeat(Math.round((30 * done) / steps)).padEnd(30, ".");
          process.stdout.write(`\r  [${bar}] step ${done}/${steps} ${m.phase.padEnd(6)} loss ${m.loss.toFixed(3)}`);
        }
      } else if (event.event === "epoch") {
        const e = event.data;
        const line = `  epoch ${e.epoch}: loss ${e.loss.toFixed(3)}, train clean ${pct(e.clean_acc)}, adv ${pct(e.adv_acc)}`;
        process.stdout.write(isTTY ? `\r${line.padEnd(80)}\n` : `${line}\n`);
      }
    }
    await run;
    const trainSeconds = (Date.now() - t0) / 1000;
    const evaluating = worker.evaluate(model, data, evaluation(options.quick ? 128 : null), { split: "test" });
    for await (const event of evaluating) {
      if (isTTY && event.event === "progress") {
        process.stdout.write(`\r  evaluating: ${event.data.samples} samples`);
      }
    }
    const report = await evaluating;
    if (isTTY) process.stdout.write("\r".padEnd(60) + "\r");
    const described = await model.describe();
    rows.push({ name: c.name, method: c.trainer.method ?? "", info: described, report, trainSeconds });
    const ra = report.attacks[0];
    console.log(
      `  SA ${pct(report.summary.sa)}  RA ${pct(ra?.robust_accuracy)} (${ra?.label})  ` +
        `routing agreement ${pct(ra?.routing_agreement?.overall)}  trained in ${trainSeconds.toFixed(0)} s`,
    );
  }

  const markdown = renderReport(rows, epochs, d);
  writeFileSync(join(out, "report.md"), markdown);
  writeFileSync(join(out, "report.json"), `${JSON.stringify({ epochs, data: d, rows }, null, 2)}\n`);
  console.log(`\n${markdown}`);
  console.log(
    `report: ${join(out, "report.md")} and report.json; done in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

function renderReport(rows: Row[], epochs: number, data: { train: number; test: number }): string {
  const pgd = rows[0]?.report.attacks[0]?.settings;
  const lines = [
    "# AdvMoE demo: robustness report",
    "",
    `scikit-learn digits, 16x16 grey, ${data.train} training / ${data.test} test images; ResNet-18 (CIFAR stem, width 0.25), ` +
      `${epochs} epochs, training attack PGD-2 (eps 8/255, step 5/255).`,
    `RA: PGD-${pgd?.steps} ${pgd?.norm} eps ${pgd?.eps?.toFixed(4)} step ${pgd?.step_size?.toFixed(4)}, random start, seed ${pgd?.seed}. ` +
      "Router RA: the router-targeted attack; pathway RA: routes pinned to the clean choice under the pathway attack.",
    "",
    "| model | method | SA | RA (PGD) | router RA | pathway RA | routing agreement | expert load (clean) | active MACs | router MACs | train s |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const rep = r.report;
    const ra = rep.attacks[0];
    const load = rep.clean.expert_load?.share[0]?.map((s) => `${(100 * s).toFixed(0)}%`).join("/") ?? "-";
    lines.push(
      `| ${r.name} | ${r.method} | ${pct(rep.summary.sa)} | ${pct(ra?.robust_accuracy)} | ${pct(rep.summary.ra_router)} | ` +
        `${pct(rep.summary.ra_pathway)} | ${pct(ra?.routing_agreement?.overall)} | ${load} | ` +
        `${megaMacs(r.info.macs.active)} | ${megaMacs(r.info.macs.router)} | ${r.trainSeconds.toFixed(0)} |`,
    );
  }
  lines.push("", "Warnings:", ...rows.flatMap((r) => r.report.warnings.map((w) => `- ${r.name}: ${w.message}`)), "");
  return lines.join("\n");
}
