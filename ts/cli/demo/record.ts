// What one main-job run records, and the numbers a table takes from it.
import type { EvaluationReport } from "../../schemas/evaluation.js";
import type { ModelSpec } from "../../schemas/model.js";
import type { TrainerSpec } from "../../schemas/trainer.js";
import type { JobSettings } from "./contenders.js";

/** One epoch of training: train-batch metrics and the validation robust accuracy. */
export interface EpochPoint {
  epoch: number;
  loss: number | null;
  trainCleanAcc: number | null;
  trainAdvAcc: number | null;
  /** Mean clean expert share over the epoch's steps; null for dense models. */
  expertLoad: number[] | null;
  valSa: number | null;
  valRa: number | null;
}

/** One contender trained with one seed and evaluated. */
export interface RunRecord {
  key: string;
  name: string;
  role: string;
  seed: number;
  model: ModelSpec;
  trainer: TrainerSpec;
  macs: { dense: number; active: number; router: number; totalActive: number };
  history: EpochPoint[];
  /** routing_collapse and other warnings raised while training. */
  trainWarnings: { code: string; message: string }[];
  report: EvaluationReport;
  trainSeconds: number;
  evalSeconds: number;
}

/** Everything a main-job run wrote: enough to regenerate its tables and charts. */
export interface JobReport {
  format: "advmoe.demo";
  version: 1;
  /** The command that produced it, as typed. */
  command: string;
  settings: JobSettings;
  seeds: number[];
  workers: number;
  worker: { torch: string; python: string; device: string; threadsPerWorker: number };
  data: { name: string; train: number; val: number; test: number; numClasses: number };
  seconds: number;
  runs: RunRecord[];
}

/** The headline numbers of one run. */
export interface RunNumbers {
  sa: number;
  ra: number | null;
  raWorst: number | null;
  aa: number | null;
  aaClean: number | null;
  aaWorst: number | null;
  raRouter: number | null;
  raPathway: number | null;
  agreement: number | null;
  /** Largest share of clean test samples any expert takes; null for dense models. */
  maxShare: number | null;
  activeMacs: number;
  routerMacs: number;
  trainSeconds: number;
}

export function numbers(run: RunRecord): RunNumbers {
  const r = run.report;
  const pgd = r.attacks.find((a) => a.settings.name === "pgd");
  const share = r.clean.expert_load?.share;
  return {
    sa: r.summary.sa,
    ra: pgd?.robust_accuracy ?? null,
    raWorst: r.summary.ra_worst,
    aa: r.summary.aa,
    aaClean: r.autoattack?.clean_accuracy ?? null,
    aaWorst: r.summary.aa_worst,
    raRouter: r.summary.ra_router,
    raPathway: r.summary.ra_pathway,
    agreement: pgd?.routing_agreement?.overall ?? null,
    maxShare: share ? Math.max(...share.flat()) : null,
    activeMacs: run.macs.active,
    routerMacs: run.macs.router,
    trainSeconds: run.trainSeconds,
  };
}
