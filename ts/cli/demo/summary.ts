// The main job's report in Markdown: a table (mean ± std over seeds), per-seed routing,
// and comparisons computed from the numbers, so the conclusions cannot drift from them.
import { type JobReport, numbers, type RunNumbers, type RunRecord } from "./record.js";

type Key = keyof RunNumbers;

/** Share above which one expert is said to have taken over (E = 2). */
export const COLLAPSE_SHARE = 0.75;

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n − 1); 0 for one value. */
function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

const pct = (x: number) => (100 * x).toFixed(1);
const mega = (x: number) => (x / 1e6).toFixed(2);

/** Runs grouped by contender, in the order they first appear. */
export function byContender(report: JobReport): RunRecord[][] {
  const groups = new Map<string, RunRecord[]>();
  for (const run of report.runs) {
    const group = groups.get(run.key) ?? [];
    group.push(run);
    groups.set(run.key, group);
  }
  return [...groups.values()];
}

function values(runs: RunRecord[], key: Key): number[] {
  return runs.map((r) => numbers(r)[key]).filter((v): v is number => v !== null);
}

function cell(runs: RunRecord[], key: Key, format: (x: number) => string = pct): string {
  const xs = values(runs, key);
  if (xs.length === 0) return "–";
  if (xs.length === 1) return format(xs[0] as number);
  return `${format(mean(xs))} ± ${format(std(xs))}`;
}

/** The table and the comparisons, as Markdown. */
export function renderMarkdown(report: JobReport): string {
  const s = report.settings;
  const groups = byContender(report);
  const first = report.runs[0];
  const pgd = first?.report.attacks.find((a) => a.settings.name === "pgd")?.settings;
  const aa = first?.report.autoattack;
  const n = report.seeds.length;
  const lines: string[] = [
    "# AdvMoE main job: robustness report",
    "",
    `Command: \`${report.command}\``,
    "",
    `Data: ${report.data.name}, ${report.data.train} training / ${report.data.val} validation / ${report.data.test} test images, ${report.data.numClasses} classes. ` +
      `Models: ResNet-18 (CIFAR stem, width 0.25); MoE: E = 2 experts at ratio 0.5, image router scaled with the backbone. ` +
      `Training: ${s.epochs} epochs, batch 64, SGD lr 0.05 with a cosine schedule, training attack ${first?.trainer.attack?.steps ?? "?"} steps of ε/4 at ε = ${s.eps}.`,
    `Evaluation on ${first?.report.samples ?? "?"} test images: RA = PGD-${pgd?.steps} L∞ ε ${s.eps}, step ${pgd?.step_size}, random start; ` +
      `a sample counts as robust only if it is classified correctly both clean and under the attack, so RA ≤ SA. ` +
      "RA worst = per-sample worst case over PGD and, for MoE models, the paper code's attack (CE + β·CE(router, y mod E)), the router attack and the pathway attack. " +
      `AA = AutoAttack ${aa?.settings.version ?? "standard"} (${aa?.settings.attacks.join(", ") ?? ""}; ${aa?.settings.library ?? ""}) on the first ${aa?.samples ?? s.autoattackSamples} test images; AA worst adds every attack above on those images. ` +
      "Router RA: under the router-targeted attack; pathway RA: routes pinned to each image's clean choice under the pathway attack.",
    `Seeds: ${report.seeds.join(", ")} (${n === 1 ? "one run per model" : `mean ± sample std over ${n} runs per model`}). ` +
      `Worker: torch ${report.worker.torch} on ${report.worker.device}, ${report.workers} worker process(es) of ${report.worker.threadsPerWorker} thread(s). ` +
      `Wall time ${Math.round(report.seconds)} s.`,
    "",
    "| model | SA | RA (PGD) | RA worst | AA | AA worst | router RA | pathway RA | routing agreement | top expert share | active MACs (M) | + router (M) | train s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const runs of groups) {
    const r = runs[0] as RunRecord;
    lines.push(
      `| ${r.name} | ${cell(runs, "sa")} | ${cell(runs, "ra")} | ${cell(runs, "raWorst")} | ${cell(runs, "aa")} | ` +
        `${cell(runs, "aaWorst")} | ${cell(runs, "raRouter")} | ${cell(runs, "raPathway")} | ${cell(runs, "agreement")} | ` +
        `${cell(runs, "maxShare")} | ${mega(r.macs.active)} | ${mega(r.macs.router)} | ${cell(runs, "trainSeconds", (x) => x.toFixed(0))} |`,
    );
  }
  lines.push("", "Accuracies in %. Top expert share: the largest share of clean test images any one expert takes.", "");
  lines.push("## Routing per seed", "");
  for (const runs of groups) {
    const r = runs[0] as RunRecord;
    if (!r.model.moe) continue;
    const loads = runs.map((run) => {
      const share = run.report.clean.expert_load?.share[0] ?? [];
      return `seed ${run.seed}: ${share.map((x) => pct(x)).join("/")}`;
    });
    const collapsed = runs.filter((run) => (numbers(run).maxShare ?? 0) > COLLAPSE_SHARE).length;
    const warned = runs.filter((run) => run.trainWarnings.some((w) => w.code === "routing_collapse")).length;
    lines.push(
      `- ${r.name}: clean expert load ${loads.join("; ")}. Collapsed (one expert above ${pct(COLLAPSE_SHARE)}%) in ${collapsed} of ${runs.length}; ` +
        `a routing_collapse warning during training in ${warned} of ${runs.length}.`,
    );
  }
  lines.push("", "## What the numbers say", "", ...conclusions(report, groups), "");
  return lines.join("\n");
}

/** Paired comparisons (same seed) of AdvMoE against each other contender, plus the checks. */
function conclusions(report: JobReport, groups: RunRecord[][]): string[] {
  const find = (key: string) => groups.find((g) => g[0]?.key === key);
  const advmoe = find("advmoe");
  const out: string[] = [];
  if (!advmoe) return out;
  const compare = (other: RunRecord[], key: Key, label: string): string | null => {
    const diffs: number[] = [];
    for (const a of advmoe) {
      const b = other.find((o) => o.seed === a.seed);
      const x = numbers(a)[key];
      const y = b ? numbers(b)[key] : null;
      if (x !== null && y !== null) diffs.push(x - y);
    }
    if (diffs.length === 0) return null;
    const wins = diffs.filter((d) => d > 0).length;
    const spread = diffs.length > 1 ? ` (paired std ${pct(std(diffs))})` : "";
    const sign = mean(diffs) >= 0 ? "+" : "";
    return `${label} ${sign}${pct(mean(diffs))} points${spread}, higher in ${wins} of ${diffs.length} seed(s)`;
  };
  for (const other of groups) {
    const o = other[0] as RunRecord;
    if (o.key === "advmoe") continue;
    const parts = [
      compare(other, "ra", "RA"),
      compare(other, "raWorst", "RA worst"),
      compare(other, "aa", "AA"),
    ].filter((p): p is string => p !== null);
    out.push(`- AdvMoE vs ${o.name}: ${parts.join("; ")}.`);
  }
  out.push(verdict(advmoe, groups));
  const dense = find("dense");
  const a = advmoe[0] as RunRecord;
  if (dense) {
    const d = dense[0] as RunRecord;
    out.push(
      `- Cost: one AdvMoE inference is ${mega(a.macs.active)} M MACs on the chosen pathway plus ${mega(a.macs.router)} M in the router, ` +
        `${pct((a.macs.active + a.macs.router) / d.macs.dense)}% of the dense model's ${mega(d.macs.dense)} M (${pct(a.macs.active / d.macs.dense)}% without the router).`,
    );
  }
  const collapsed = advmoe.filter((r) => (numbers(r).maxShare ?? 0) > COLLAPSE_SHARE).length;
  out.push(
    collapsed === 0
      ? `- Routing: AdvMoE at default settings kept both experts in use in every seed (top expert share ≤ ${pct(COLLAPSE_SHARE)}% of clean test images).`
      : `- Routing: AdvMoE at default settings collapsed onto one expert in ${collapsed} of ${advmoe.length} seed(s).`,
  );
  const gaps = advmoe.map((r) => numbers(r)).filter((x) => x.aa !== null && x.ra !== null);
  if (gaps.length > 0) {
    out.push(
      `- Gradient masking check: on AutoAttack's subset AdvMoE keeps ${cellOf(gaps.map((g) => g.aa as number))}% under AutoAttack ` +
        `(clean ${cellOf(gaps.map((g) => g.aaClean as number))}%) against ${cellOf(gaps.map((g) => g.ra as number))}% under PGD on the whole test set; ` +
        "the AA comparisons above say whether its edge survives the gradient-free Square attack and the targeted attacks.",
    );
  }
  const checked = report.runs.flatMap((r) => {
    const x = numbers(r);
    return [x.ra, x.raWorst, x.raRouter, x.raPathway].filter((v): v is number => v !== null).map((v) => v <= x.sa);
  });
  out.push(
    `- Metric check: ${checked.filter(Boolean).length} of ${checked.length} robust accuracies are at most their model's SA (it holds by construction).`,
  );
  return out;
}

function cellOf(xs: number[]): string {
  return xs.length > 1 ? `${pct(mean(xs))} ± ${pct(std(xs))}` : pct(xs[0] as number);
}

/** Against whom AdvMoE loses (or wins) under the strongest evaluation here, in every seed. */
function verdict(advmoe: RunRecord[], groups: RunRecord[][]): string {
  const strongest: Key[] = ["raWorst", "aa"];
  const always = (other: RunRecord[], better: (x: number, y: number) => boolean) =>
    advmoe.every((a) => {
      const b = other.find((o) => o.seed === a.seed);
      return (
        b !== undefined &&
        strongest.every((key) => {
          const x = numbers(a)[key];
          const y = numbers(b)[key];
          return x !== null && y !== null && better(x, y);
        })
      );
    });
  const others = groups.filter((g) => g[0]?.key !== "advmoe");
  const below = others.filter((g) => always(g, (x, y) => x < y)).map((g) => g[0] as RunRecord);
  const above = others.filter((g) => always(g, (x, y) => x > y)).map((g) => g[0] as RunRecord);
  const names = (rs: RunRecord[]) => rs.map((r) => r.name).join(", ");
  const claim = below.some((r) => r.key === "dense")
    ? "so the paper's claim, an MoE more robust than the dense CNN, does not hold in this setting"
    : above.some((r) => r.key === "dense")
      ? "so the paper's claim, an MoE more robust than the dense CNN, holds in this setting"
      : "so against the dense CNN the outcome depends on the seed";
  const parts = [below.length ? `below ${names(below)}` : "", above.length ? `above ${names(above)}` : ""].filter(
    Boolean,
  );
  const router = advmoe.map((r) => numbers(r).raRouter).filter((v): v is number => v !== null);
  const routerText = router.length
    ? ` Under the router attack alone, which only has to change the expert choice, it keeps ${cellOf(router)}% (SA ${cellOf(advmoe.map((r) => numbers(r).sa))}%).`
    : "";
  return (
    `- Verdict: under the per-sample worst case and under AutoAttack, AdvMoE at default settings is ${parts.length ? `${parts.join(" and ")} in every seed` : "neither above nor below any contender in every seed"}, ${claim}.` +
    routerText
  );
}
