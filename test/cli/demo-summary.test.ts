import { describe, expect, it } from "vitest";
import { expertLoadChart, renderSvg, robustAccuracyChart } from "../../ts/cli/demo/charts.js";
import { DEFAULT_SETTINGS } from "../../ts/cli/demo/contenders.js";
import type { JobReport, RunRecord } from "../../ts/cli/demo/record.js";
import { renderMarkdown } from "../../ts/cli/demo/summary.js";
import type { EvaluationReport } from "../../ts/schemas/evaluation.js";
import { vegaLiteErrors } from "../display/vega-lite.js";

/** A run whose report holds just what the summary reads. */
function run(key: string, name: string, seed: number, sa: number, ra: number, load: number[] | null): RunRecord {
  const moe = load !== null;
  const report = {
    samples: 100,
    summary: {
      sa,
      ra: { pgd: ra },
      ra_worst: ra - 0.1,
      ra_worst_over: ["pgd"],
      aa: ra - 0.2,
      aa_worst: ra - 0.2,
      ra_router: moe ? ra : null,
      ra_pathway: moe ? ra : null,
    },
    attacks: [
      {
        settings: { name: "pgd", steps: 20, step_size: 0.01875 },
        robust_accuracy: ra,
        routing_agreement: moe ? { overall: 0.9, per_layer: [0.9] } : null,
      },
    ],
    clean: { expert_load: moe ? { share: [load] } : null },
    autoattack: {
      samples: 64,
      clean_accuracy: sa,
      settings: { version: "standard", attacks: ["apgd-ce"], library: "torchattacks 3.5.1" },
    },
  } as unknown as EvaluationReport;
  return {
    key,
    name,
    role: "",
    seed,
    model: { arch: "resnet18", ...(moe ? { moe: { experts: 2 } } : {}) },
    trainer: { method: moe ? "advmoe" : "trades", attack: { steps: 3 } },
    macs: { dense: 8e6, active: moe ? 2e6 : 8e6, router: moe ? 0.5e6 : 0, totalActive: moe ? 2.5e6 : 8e6 },
    history: [0, 1].map((epoch) => ({
      epoch,
      loss: 1,
      trainCleanAcc: 0.5,
      trainAdvAcc: 0.3,
      expertLoad: load,
      valSa: sa,
      valRa: ra - 0.05 * (1 - epoch),
    })),
    trainWarnings: load && Math.max(...load) > 0.9 ? [{ code: "routing_collapse", message: "collapsed" }] : [],
    report,
    trainSeconds: 10,
    evalSeconds: 5,
  };
}

const REPORT: JobReport = {
  format: "advmoe.demo",
  version: 1,
  command: "advmoe demo --seeds 2",
  settings: DEFAULT_SETTINGS,
  seeds: [0, 1],
  workers: 2,
  worker: { torch: "2.13.0", python: "3.11", device: "cpu", threadsPerWorker: 1 },
  data: { name: "digits", train: 1000, val: 100, test: 300, numClasses: 10 },
  seconds: 60,
  runs: [
    run("dense", "Dense TRADES", 0, 0.8, 0.5, null),
    run("dense", "Dense TRADES", 1, 0.8, 0.54, null),
    run("advmoe", "AdvMoE", 0, 0.7, 0.6, [0.5, 0.5]),
    run("advmoe", "AdvMoE", 1, 0.9, 0.52, [0.95, 0.05]),
  ],
};

describe("the main job's report", () => {
  const markdown = renderMarkdown(REPORT);

  it("gives mean ± sample std over seeds in the table", () => {
    // SA 70 and 90: mean 80.0, sample std 14.1; RA 60 and 52: 56.0 ± 5.7
    expect(markdown).toContain("| AdvMoE | 80.0 ± 14.1 | 56.0 ± 5.7 |");
    expect(markdown).toContain("| Dense TRADES | 80.0 ± 0.0 | 52.0 ± 2.8 |");
  });

  it("compares AdvMoE with each contender seed by seed", () => {
    // RA differences +10 and -2 points: mean +4.0, higher in 1 of 2
    expect(markdown).toContain("- AdvMoE vs Dense TRADES: RA +4.0 points (paired std 8.5), higher in 1 of 2 seed(s)");
  });

  it("gives a verdict only where an ordering holds in every seed", () => {
    expect(markdown).toContain(
      "AdvMoE at default settings is neither above nor below any contender in every seed, so against the dense CNN the outcome depends on the seed.",
    );
  });

  it("counts collapsed seeds and training warnings", () => {
    expect(markdown).toContain(
      "Collapsed (one expert above 75.0%) in 1 of 2; a routing_collapse warning during training in 1 of 2.",
    );
    expect(markdown).toContain("AdvMoE at default settings collapsed onto one expert in 1 of 2 seed(s).");
  });

  it("states the command and the cost with and without the router", () => {
    expect(markdown).toContain("Command: `advmoe demo --seeds 2`");
    expect(markdown).toContain(
      "2.00 M MACs on the chosen pathway plus 0.50 M in the router, 31.3% of the dense model's 8.00 M (25.0% without the router)",
    );
  });

  it("renders both charts to SVG with every model in them", async () => {
    for (const spec of [robustAccuracyChart(REPORT), expertLoadChart(REPORT)]) {
      const svg = await renderSvg(spec);
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).toContain("AdvMoE");
    }
    expect(await renderSvg(robustAccuracyChart(REPORT))).toContain("Dense TRADES");
  });

  it("charts are valid Vega-Lite", async () => {
    expect(await vegaLiteErrors(robustAccuracyChart(REPORT))).toEqual([]);
    expect(await vegaLiteErrors(expertLoadChart(REPORT))).toEqual([]);
    expect(await vegaLiteErrors({ ...expertLoadChart(REPORT), mark: "nonsense" })).not.toEqual([]);
  });
});
