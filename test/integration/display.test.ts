import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "../../ts/client/data.js";
import type { Model } from "../../ts/client/model.js";
import type { MimeBundle, Publish } from "../../ts/display/index.js";
import { modelBundle, reportBundle, VEGA_LITE_MIME, watchTraining } from "../../ts/display/index.js";
import { JUPYTER_DISPLAY } from "../../ts/display/symbol.js";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import type { EvaluationReport } from "../../ts/schemas/evaluation.js";
import { compiledMarks, vegaLiteErrors } from "../display/vega-lite.js";
import { TINY_DATA, TINY_MOE } from "../fixtures/specs.js";

describe("rich display of real worker results", () => {
  let worker: SpawnedWorker;
  let data: Dataset;
  let model: Model;
  let report: EvaluationReport;

  beforeAll(async () => {
    worker = await spawnWorker({ threads: 1 });
    data = await worker.createDataset(TINY_DATA);
    model = await worker.createModel(TINY_MOE);
    report = await worker.evaluate(model, data, {
      attacks: [
        { name: "pgd", steps: 2 },
        { name: "router", steps: 2 },
      ],
      batch_size: 8,
    });
  });

  afterAll(async () => {
    await worker?.close();
  });

  it("shows a model's description as an HTML table, also when the model renders itself", async () => {
    const bundle = modelBundle(model.info);
    const html = String(bundle["text/html"]);
    expect(html).toMatch(/^<table class="advmoe">/);
    expect(html).toContain(`<td>${model.info.arch}</td>`);
    expect(html).toContain(model.info.params.total.toLocaleString("en-US"));
    expect(String(bundle["text/plain"])).toContain("MoE, 2 experts");
    expect(await model[JUPYTER_DISPLAY]()).toEqual(bundle);
  });

  it("shows an evaluation report as a table and a valid Vega-Lite chart of accuracy and expert load", async () => {
    const bundle = reportBundle(report);
    const html = String(bundle["text/html"]);
    for (const a of report.attacks) {
      expect(html).toContain(`<td>${a.label}</td><td>${(100 * a.robust_accuracy).toFixed(1)}%</td>`);
    }
    expect(html).toContain(`<td>clean</td><td>${(100 * report.summary.sa).toFixed(1)}%</td>`);
    const chart = bundle[VEGA_LITE_MIME] as { hconcat: { title: string; data: { values: object[] } }[] };
    expect(await vegaLiteErrors(chart)).toEqual([]);
    expect(compiledMarks(chart).length).toBe(2);
    const [accuracy, load] = chart.hconcat;
    expect(accuracy!.data.values).toEqual([
      { input: "clean", accuracy: report.summary.sa },
      ...report.attacks.map((a) => ({ input: a.label, accuracy: a.robust_accuracy })),
      { input: "worst case", accuracy: report.summary.ra_worst },
    ]);
    expect(html).toContain(
      `<td>worst case of all attacks</td><td>${(100 * report.summary.ra_worst!).toFixed(1)}%</td>`,
    );
    expect(load!.title).toBe("Expert load");
    const cleanShares = load!.data.values.filter((v) => (v as { input: string }).input === "clean");
    expect(cleanShares.map((v) => (v as { share: number }).share)).toEqual(report.clean.expert_load!.share[0]);
    const text = String(bundle["text/plain"]);
    for (const a of report.attacks) expect(text).toContain(a.label);
  });

  it("shows a training run as one display updated in place, ending with the per-epoch history", async () => {
    await using trainer = await worker.createTrainer(model, data, {
      method: "advmoe",
      epochs: 2,
      batch_size: 8,
      attack: { steps: 1 },
      eval: { attacks: [{ name: "pgd", steps: 1 }], per_class: false },
    });
    const described = String((await trainer[JUPYTER_DISPLAY]())["text/html"]);
    expect(described).toContain("<td>advmoe</td>");
    expect(String((await data[JUPYTER_DISPLAY]())["text/plain"])).toMatch(/train \/ val \/ test\s+24 \/ 8 \/ 16/);
    const sent: Parameters<Publish>[] = [];
    const steps = trainer.info.steps_per_epoch * 2;
    const watching = watchTraining(trainer.run(), { steps, publish: (...m) => void sent.push(m), minIntervalMs: 0 });
    const result = await watching;
    expect(result.epochs_completed).toBe(2);
    const types = sent.map(([type]) => type);
    expect(types[0]).toBe("display_data");
    expect(types.slice(1).every((t) => t === "update_display_data")).toBe(true);
    expect(types.length).toBeGreaterThan(steps);
    expect(new Set(sent.map(([, c]) => c.transient.display_id)).size).toBe(1);
    const last: MimeBundle = sent.at(-1)![1].data;
    expect(String(last["text/plain"])).toMatch(/status\s+done/);
    expect(String(last["text/html"])).toContain(`<progress value="${steps}" max="${steps}">`);
    expect(watching.display.history.map((p) => p.epoch)).toEqual([0, 1]);
    expect(watching.display.history.every((p) => p.val_sa !== null)).toBe(true);
    const chart = last[VEGA_LITE_MIME] as { hconcat: { data: { values: unknown[] } }[] };
    expect(await vegaLiteErrors(chart)).toEqual([]);
    expect(chart.hconcat[0]!.data.values).toHaveLength(2);
  });
});
