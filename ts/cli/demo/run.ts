// `advmoe demo`, the main job: dense, small-dense and MoE ResNet-18s trained adversarially
// on scikit-learn's digits by local workers, then a robustness report with charts.
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { Dataset } from "../../client/data.js";
import { type SpawnedWorker, spawnWorker } from "../../launcher/spawn.js";
import { expertLoadChart, renderSvg, robustAccuracyChart } from "./charts.js";
import {
  type Contender,
  contenders,
  DEFAULT_SETTINGS,
  evaluation,
  type JobSettings,
  QUICK_SETTINGS,
} from "./contenders.js";
import type { EpochPoint, JobReport, RunRecord } from "./record.js";
import { renderMarkdown } from "./summary.js";

export interface DemoOptions {
  python?: string;
  out: string;
  quick: boolean;
  /** Seeds per contender (0, 1, ..., seeds − 1). */
  seeds: number;
  /** Worker processes training contenders side by side (default: one per core). */
  workers?: number;
  /** The command line, recorded in the report. */
  command: string;
}

const DATA = { kind: "digits", size: 16, channels: 1, val_fraction: 0.1, split_seed: 0 } as const;

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);

/** Relative training cost per epoch of each method on these models, for scheduling only. */
const COST: Record<string, number> = { advmoe: 3, "at-moe": 2, trades: 1 };

interface Job {
  index: number;
  seed: number;
  contender: Contender;
}

/** Runs the main job and writes report.json, report.md and the charts to `options.out`. */
export async function runDemo(options: DemoOptions): Promise<JobReport> {
  const started = Date.now();
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const settings: JobSettings = options.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const seeds = Array.from({ length: options.seeds }, (_, i) => i);
  const jobs: Job[] = seeds
    .flatMap((seed) => contenders(settings, seed).map((contender) => ({ seed, contender })))
    .map((job, index) => ({ ...job, index }));

  // One torch thread per worker and one worker per core: the runs are independent, so
  // side by side they use every core, and each run's numbers do not depend on how many
  // cores the machine has.
  const count = Math.max(1, Math.min(options.workers ?? availableParallelism(), jobs.length));
  const workers: SpawnedWorker[] = [];
  try {
    for (let i = 0; i < count; i++) {
      workers.push(await spawnWorker({ python: options.python, workspace: out, threads: 1 }));
    }
    const info = await workers[0]!.info();
    console.log(
      `workers: ${count} x torch ${info.torch} on ${info.default_device}, 1 thread each (${workers[0]!.python.path})`,
    );
    const datasets = await Promise.all(workers.map((w) => w.createDataset(DATA)));
    const d = datasets[0]!.info;
    console.log(
      `data: scikit-learn digits at 16x16, ${d.train} train / ${d.val} val / ${d.test} test; ` +
        `${jobs.length} runs (${jobs.length / seeds.length} models x ${seeds.length} seed(s)), ${settings.epochs} epochs each, eps ${settings.eps}`,
    );

    const records: RunRecord[] = new Array(jobs.length);
    // longest runs first, so the workers finish close together
    const queue = [...jobs].sort(
      (a, b) => COST[b.contender.trainer.method ?? ""]! - COST[a.contender.trainer.method ?? ""]!,
    );
    await Promise.all(
      workers.map(async (worker, w) => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          records[job.index] = await runOne(worker, datasets[w]!, job, settings);
        }
      }),
    );

    const report: JobReport = {
      format: "advmoe.demo",
      version: 1,
      command: options.command,
      settings,
      seeds,
      workers: count,
      worker: { torch: info.torch, python: info.python, device: info.default_device, threadsPerWorker: 1 },
      data: {
        name: "scikit-learn digits, 16x16 grey",
        train: d.train,
        val: d.val,
        test: d.test,
        numClasses: d.num_classes,
      },
      seconds: (Date.now() - started) / 1000,
      runs: records,
    };
    await writeReport(report, out);
    return report;
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

/** Writes report.json, report.md, ra.svg and expert-load.svg into `out`; prints the Markdown. */
export async function writeReport(report: JobReport, out: string): Promise<void> {
  const markdown = renderMarkdown(report);
  writeFileSync(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "report.md"), markdown);
  writeFileSync(join(out, "ra.svg"), await renderSvg(robustAccuracyChart(report)));
  writeFileSync(join(out, "expert-load.svg"), await renderSvg(expertLoadChart(report)));
  console.log(`\n${markdown}`);
  console.log(`report: ${join(out, "report.md")}, report.json, ra.svg, expert-load.svg`);
}

async function runOne(worker: SpawnedWorker, data: Dataset, job: Job, settings: JobSettings): Promise<RunRecord> {
  const c = job.contender;
  const tag = `[${c.name}, seed ${job.seed}]`;
  const model = await worker.createModel(c.model);
  const trainer = await worker.createTrainer(model, data, c.trainer);
  const history: EpochPoint[] = [];
  const trainWarnings: RunRecord["trainWarnings"] = [];
  const t0 = Date.now();
  const run = trainer.run({ epochs: settings.epochs });
  for await (const event of run) {
    if (event.event === "epoch") {
      const e = event.data;
      const valRa = e.eval ? (Object.values(e.eval.summary.ra)[0] ?? null) : null;
      history.push({
        epoch: e.epoch,
        loss: e.loss,
        trainCleanAcc: e.clean_acc,
        trainAdvAcc: e.adv_acc,
        expertLoad: e.expert_load ?? null,
        valSa: e.eval?.summary.sa ?? null,
        valRa,
      });
      const load = e.expert_load ? ` load ${e.expert_load.map((x) => (100 * x).toFixed(0)).join("/")}` : "";
      console.log(
        `${tag} epoch ${e.epoch + 1}/${settings.epochs}: loss ${e.loss.toFixed(3)}, train adv ${pct(e.adv_acc)}, ` +
          `val SA ${pct(e.eval?.summary.sa)} RA ${pct(valRa)}${load} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
      );
    } else if (event.event === "warning") {
      trainWarnings.push({ code: event.data.code, message: event.data.message });
      console.log(`${tag} warning: ${event.data.message}`);
    }
  }
  await run;
  const trainSeconds = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  const report = await worker.evaluate(model, data, evaluation(settings), { split: "test" });
  const evalSeconds = (Date.now() - t1) / 1000;
  const macs = (await model.describe()).macs;
  await trainer.delete();
  await model.delete();
  const s = report.summary;
  console.log(
    `${tag} done: SA ${pct(s.sa)}, RA ${pct(report.attacks[0]?.robust_accuracy)}, RA worst ${pct(s.ra_worst)}, ` +
      `AA ${pct(s.aa)} (train ${trainSeconds.toFixed(0)} s, eval ${evalSeconds.toFixed(0)} s)`,
  );
  return {
    key: c.key,
    name: c.name,
    role: c.role,
    seed: job.seed,
    model: c.model,
    trainer: c.trainer,
    macs: { dense: macs.dense, active: macs.active, router: macs.router, totalActive: macs.total_active },
    history,
    trainWarnings,
    report,
    trainSeconds,
    evalSeconds,
  };
}
