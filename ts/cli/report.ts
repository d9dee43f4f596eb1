// The final report of a command: report.json, report.md and, with an evaluation, a RobustBench-style result.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EvaluationReport } from "../schemas/evaluation.js";
import { toJson } from "./json.js";

/** Everything a command reports at its end. */
export interface FinalReport {
  command: "train" | "resume" | "evaluate";
  model_id: string;
  spec_file: string | null;
  checkpoint: string | null;
  model: unknown;
  training: {
    method: string;
    global_step: number;
    epochs_completed: number;
    epochs: unknown[];
  } | null;
  evaluation: EvaluationReport | null;
  worker: unknown;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);

/**
 * The RobustBench result format (model id, threat model, eps, clean and robust accuracy,
 * AutoAttack log); robust accuracy is AutoAttack's when it ran, else the worst case over the attacks.
 */
export function robustBenchResult(modelId: string, report: EvaluationReport): Record<string, unknown> {
  const aa = report.autoattack;
  const first = report.attacks[0]?.settings as { eps?: number; norm?: string } | undefined;
  const norm = aa?.settings.norm ?? first?.norm ?? "linf";
  const eps = aa?.settings.eps ?? first?.eps ?? null;
  return {
    model_id: modelId,
    threat_model: norm === "l2" ? "L2" : "Linf",
    eps,
    clean_acc: report.summary.sa,
    robust_acc: aa ? aa.robust_accuracy : report.summary.ra_worst,
    robust_acc_source: aa ? "autoattack" : report.attacks.length ? "worst case over attacks" : null,
    n_examples: report.samples,
    autoattack_acc: report.summary.aa,
    autoattack_log: aa
      ? {
          version: aa.settings.version,
          attacks: aa.settings.attacks,
          library: aa.settings.library,
          samples: aa.samples,
          clean_accuracy: aa.clean_accuracy,
          robust_accuracy: aa.robust_accuracy,
          worst_case_accuracy: aa.worst_case_accuracy,
          seconds: aa.seconds,
        }
      : null,
    attacks: report.attacks.map((a) => ({ label: a.label, robust_acc: a.robust_accuracy, settings: a.settings })),
  };
}

function markdown(report: FinalReport): string {
  const lines = [
    `# ${report.model_id}`,
    "",
    `advmoe ${report.command}${report.spec_file ? ` ${report.spec_file}` : ""}`,
  ];
  if (report.checkpoint) lines.push("", `Checkpoint: \`${report.checkpoint}\``);
  if (report.training) {
    const t = report.training;
    lines.push("", "## Training", "", `Method ${t.method}, ${t.epochs_completed} epochs, ${t.global_step} steps.`, "");
    lines.push("| epoch | loss | clean acc | adv acc | expert load |", "|---:|---:|---:|---:|---|");
    for (const e of t.epochs as {
      epochs_completed: number;
      loss: number;
      clean_acc: number | null;
      adv_acc: number | null;
      expert_load?: number[] | null;
    }[]) {
      lines.push(
        `| ${e.epochs_completed} | ${e.loss.toFixed(4)} | ${pct(e.clean_acc)} | ${pct(e.adv_acc)} | ${e.expert_load ? e.expert_load.map((v) => v.toFixed(2)).join(" / ") : "-"} |`,
      );
    }
  }
  const ev = report.evaluation;
  if (ev) {
    lines.push("", "## Evaluation", "", `${ev.samples} samples.`, "", "| metric | accuracy |", "|---|---:|");
    lines.push(`| SA (clean) | ${pct(ev.summary.sa)} |`);
    for (const a of ev.attacks) lines.push(`| RA ${a.label} | ${pct(a.robust_accuracy)} |`);
    if (ev.summary.ra_worst !== null) lines.push(`| RA worst case | ${pct(ev.summary.ra_worst)} |`);
    if (ev.summary.aa !== null) lines.push(`| AA | ${pct(ev.summary.aa)} |`);
    if (ev.costs) lines.push("", `MACs per sample: ${(ev.costs.macs_per_sample / 1e6).toFixed(3)}M.`);
  }
  return `${lines.join("\n")}\n`;
}

/** Writes report.json, report.md and (with an evaluation) robustbench.json into `out`; returns their paths. */
export function writeReport(out: string, report: FinalReport): string[] {
  mkdirSync(out, { recursive: true });
  const files = [join(out, "report.json"), join(out, "report.md")];
  writeFileSync(files[0]!, `${toJson(report, 2)}\n`);
  writeFileSync(files[1]!, markdown(report));
  if (report.evaluation) {
    const rb = join(out, "robustbench.json");
    writeFileSync(rb, `${JSON.stringify(robustBenchResult(report.model_id, report.evaluation), null, 2)}\n`);
    files.push(rb);
  }
  return files;
}
