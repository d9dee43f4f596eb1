// An evaluation report as a table plus a Vega-Lite chart of accuracy per attack and expert load.
import type { EvaluationReport } from "../schemas/evaluation.js";
import { type Displayable, displayable, type MimeBundle, VEGA_LITE_MIME, VEGA_LITE_SCHEMA } from "./bundle.js";
import { escapeHtml, htmlTable, pct, textTable } from "./html.js";

type Load = NonNullable<EvaluationReport["clean"]["expert_load"]>;

/** Share per expert, averaged over routing layers. */
function meanShare(load: Load): number[] {
  const layers = load.share.length || 1;
  return Array.from({ length: load.num_experts }, (_, e) => load.share.reduce((s, l) => s + (l[e] ?? 0), 0) / layers);
}

/** One row per measurement: what ran, its accuracy, routing agreement and expert load. */
export function reportRows(report: EvaluationReport): string[][] {
  const load = (l: Load | null) =>
    l
      ? meanShare(l)
          .map((s) => pct(s))
          .join(" / ")
      : "-";
  const rows = [["clean", pct(report.summary.sa), "-", "-", load(report.clean.expert_load)]];
  for (const a of report.attacks) {
    rows.push([
      a.label,
      pct(a.robust_accuracy),
      pct(a.frozen_pathway_accuracy),
      pct(a.routing_agreement?.overall),
      load(a.expert_load),
    ]);
  }
  if (report.summary.ra_worst !== null && report.attacks.length > 1) {
    rows.push(["worst case of all attacks", pct(report.summary.ra_worst), "-", "-", "-"]);
  }
  if (report.autoattack)
    rows.push([
      `AutoAttack (${report.autoattack.settings.version})`,
      pct(report.autoattack.robust_accuracy),
      "-",
      "-",
      "-",
    ]);
  return rows;
}

const HEADER = ["input", "accuracy", "frozen-pathway acc.", "routing agreement", "expert load"];

/** The Vega-Lite v5 spec: accuracy per attack, and (MoE models) expert load per input. */
export function reportChart(report: EvaluationReport): Record<string, unknown> {
  const accuracy = [
    { input: "clean", accuracy: report.summary.sa },
    ...report.attacks.map((a) => ({ input: a.label, accuracy: a.robust_accuracy })),
    ...(report.summary.ra_worst !== null && report.attacks.length > 1
      ? [{ input: "worst case", accuracy: report.summary.ra_worst }]
      : []),
    ...(report.autoattack ? [{ input: "AutoAttack", accuracy: report.autoattack.robust_accuracy }] : []),
  ];
  const accuracyChart = {
    title: "Accuracy per attack",
    data: { values: accuracy },
    mark: { type: "bar" },
    encoding: {
      x: { field: "input", type: "nominal", sort: null, title: null },
      y: { field: "accuracy", type: "quantitative", scale: { domain: [0, 1] }, axis: { format: "%" } },
      tooltip: [
        { field: "input", type: "nominal" },
        { field: "accuracy", type: "quantitative", format: ".1%" },
      ],
    },
  };
  const loads: { input: string; expert: string; share: number }[] = [];
  const addLoad = (input: string, l: Load | null) => {
    if (!l) return;
    for (const [e, share] of meanShare(l).entries()) loads.push({ input, expert: `expert ${e}`, share });
  };
  addLoad("clean", report.clean.expert_load);
  for (const a of report.attacks) addLoad(a.label, a.expert_load);
  const charts: Record<string, unknown>[] = [accuracyChart];
  if (loads.length) {
    charts.push({
      title: "Expert load",
      data: { values: loads },
      mark: { type: "bar" },
      encoding: {
        x: { field: "input", type: "nominal", sort: null, title: null },
        y: { field: "share", type: "quantitative", stack: "normalize", axis: { format: "%" } },
        color: { field: "expert", type: "nominal" },
        tooltip: [
          { field: "input", type: "nominal" },
          { field: "expert", type: "nominal" },
          { field: "share", type: "quantitative", format: ".1%" },
        ],
      },
    });
  }
  return { $schema: VEGA_LITE_SCHEMA, hconcat: charts };
}

/** text/html (table and settings), Vega-Lite chart and text/plain views of a report. */
export function reportBundle(report: EvaluationReport): MimeBundle {
  const rows = reportRows(report);
  const caption = `${report.samples} samples, ${report.num_classes} classes, on ${report.settings.device}`;
  const warnings = report.warnings.map((w) => `<li>${escapeHtml(w.code)}: ${escapeHtml(w.message)}</li>`).join("");
  const settings = report.attacks.map(
    (a) =>
      `<li>${escapeHtml(a.label)}: ${escapeHtml(a.settings.name)} ${escapeHtml(a.settings.norm)}, eps ${a.settings.eps.toFixed(4)}, ${a.settings.steps} steps of ${a.settings.step_size.toFixed(4)}, ${a.settings.restarts} restart(s), seed ${a.settings.seed}</li>`,
  );
  const html =
    htmlTable(HEADER, rows, caption) +
    (settings.length ? `<ul class="advmoe-settings">${settings.join("")}</ul>` : "") +
    (warnings ? `<ul class="advmoe-warnings">${warnings}</ul>` : "");
  const text = [
    `evaluation: ${caption}`,
    textTable(HEADER, rows),
    ...report.warnings.map((w) => `warning ${w.code}: ${w.message}`),
  ];
  return { "text/html": html, [VEGA_LITE_MIME]: reportChart(report), "text/plain": text.join("\n") };
}

/** A notebook renders this as the report's table and chart. */
export function displayReport(report: EvaluationReport): Displayable & { bundle: MimeBundle } {
  return displayable(reportBundle(report));
}
