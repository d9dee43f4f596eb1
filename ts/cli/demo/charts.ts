// Charts of a main-job run as Vega-Lite specs, rendered to SVG files beside the report.
import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { JobReport } from "./record.js";

/** What both charts share: a 480x280 line chart over epochs, one colour per model. */
function epochLines(title: string, values: object[], y: object, extra: object = {}): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    width: 480,
    height: 280,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1 } },
      y,
      color: { field: "model", type: "nominal", title: "model" },
      ...extra,
    },
  } as TopLevelSpec;
}

/** Robust accuracy on the validation split after each epoch: mean over seeds, one line per model. */
export function robustAccuracyChart(report: JobReport): TopLevelSpec {
  const values = report.runs.flatMap((run) =>
    run.history
      .filter((p) => p.valRa !== null)
      .map((p) => ({ model: run.name, seed: run.seed, epoch: p.epoch + 1, ra: p.valRa })),
  );
  return epochLines(`Validation robust accuracy (PGD-10, ε = ${report.settings.eps}) per epoch`, values, {
    aggregate: "mean",
    field: "ra",
    type: "quantitative",
    title: "RA (mean over seeds)",
    axis: { format: ".0%" },
  });
}

/** Share of clean training samples routed to expert 0, per epoch and seed, for each MoE model. */
export function expertLoadChart(report: JobReport): TopLevelSpec {
  const values = report.runs.flatMap((run) =>
    run.history
      .filter((p) => p.expertLoad !== null)
      .map((p) => ({ model: run.name, seed: run.seed, epoch: p.epoch + 1, share: p.expertLoad?.[0] })),
  );
  return epochLines(
    "Clean expert load per epoch (share of expert 0; 50% = balanced, 0% or 100% = collapsed)",
    values,
    {
      field: "share",
      type: "quantitative",
      title: "share of expert 0",
      scale: { domain: [0, 1] },
      axis: { format: ".0%" },
    },
    { detail: { field: "seed", type: "nominal" } },
  );
}

/** Renders a Vega-Lite spec to an SVG document (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
