import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { displayable, JUPYTER_DISPLAY, kernelPublisher, type Publish } from "../../ts/display/bundle.js";
import { escapeHtml, htmlTable, textTable } from "../../ts/display/html.js";
import { TrainingDisplay } from "../../ts/display/training.js";
import type { StepEvent } from "../../ts/schemas/events.js";
import { compiledMarks, vegaLiteErrors } from "./vega-lite.js";

const ROOT = resolve(import.meta.dirname, "../..");

/** Files reachable from `entry` through static imports (dynamic `import()` excluded). */
function staticGraph(entry: string, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const source = readFileSync(entry, "utf8");
  for (const m of source.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)) {
    staticGraph(join(dirname(entry), m[1]!.replace(/\.js$/, ".ts")), seen);
  }
  return seen;
}

function step(n: number): StepEvent {
  return {
    event: "step",
    tensors: {},
    data: {
      phase: "router",
      step: n,
      epoch: 0,
      batch: n - 1,
      loss: 2 / n,
      terms: { ce: 2 / n },
      clean_acc: 0.5,
      adv_acc: 0.25,
      router_entropy: 0.6,
      expert_load: [0.5, 0.5],
      expert_load_adv: [0.6, 0.4],
      grad_norm: 1,
      lr: { router: 0.1, expert: 0.1 },
      step_time_s: 0.1,
      images_per_s: 80,
      epoch_end: false,
    } as unknown as StepEvent["data"], // the index signature of extra metrics types reads, not literals
  };
}

describe("advmoe/display building blocks", () => {
  it("is not reached by static imports from the SDK's entry point (only the display symbol is)", () => {
    const reached = [...staticGraph(join(ROOT, "ts/index.ts"))].map((f) => relative(ROOT, f));
    expect(reached).toContain("ts/client/model.ts");
    expect(reached.filter((f) => f.startsWith("ts/display/"))).toEqual(["ts/display/symbol.ts"]);
  });

  it("finds Deno's Jupyter broadcast when the kernel provides it, and nothing under plain Node", async () => {
    expect(kernelPublisher()).toBeUndefined();
    const sent: unknown[][] = [];
    const scope = { Deno: { jupyter: { broadcast: async (...args: unknown[]) => void sent.push(args) } } };
    const publish = kernelPublisher(scope)!;
    const content = { data: { "text/plain": "x" }, metadata: {}, transient: { display_id: "d" } };
    await publish("display_data", content);
    expect(sent).toEqual([["display_data", content]]);
    const outsideKernel = {
      Deno: {
        get jupyter(): never {
          throw new Error("Deno.jupyter is only available in a Jupyter kernel");
        },
      },
    };
    expect(kernelPublisher(outsideKernel)).toBeUndefined();
  });

  it("renders through Symbol.for('Jupyter.display'), the symbol Deno's kernel calls", () => {
    const view = displayable({ "text/plain": "hi" });
    expect(JUPYTER_DISPLAY).toBe(Symbol.for("Jupyter.display"));
    expect(view[Symbol.for("Jupyter.display") as typeof JUPYTER_DISPLAY]()).toEqual({ "text/plain": "hi" });
  });

  it("escapes every cell of an HTML table and aligns text tables", () => {
    expect(escapeHtml(`<b a="1">&'`)).toBe("&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    expect(htmlTable(["a"], [["<x>"]])).toContain("<td>&lt;x&gt;</td>");
    expect(textTable(["a", "bb"], [["ccc", "d"]])).toBe("a    bb\nccc  d");
  });

  it("estimates the time left from the pace of the steps so far", () => {
    let now = 0;
    const view = new TrainingDisplay({ totalSteps: 10, now: () => now });
    view.update(step(1));
    expect(view.etaSeconds).toBeNull();
    now = 2000;
    view.update(step(2));
    now = 4000;
    view.update(step(3));
    expect(view.etaSeconds).toBe(14); // 2 s per step, 7 steps left
    expect(view.bundle()["text/plain"]).toMatch(/ETA\s+14 s/);
  });

  it("opens one display, then updates it in place under the same display_id", async () => {
    const sent: Parameters<Publish>[] = [];
    let now = 0;
    const view = new TrainingDisplay({ publish: (...a) => void sent.push(a), now: () => now, minIntervalMs: 100 });
    view.update(step(1));
    view.update(step(2)); // within 100 ms of the last update: held back
    now = 150;
    view.update(step(3));
    expect(sent.map(([type]) => type)).toEqual(["display_data", "update_display_data"]);
    expect(new Set(sent.map(([, c]) => c.transient.display_id))).toEqual(new Set([view.displayId]));
    const errors = await vegaLiteErrors(sent.at(-1)![1].data["application/vnd.vegalite.v5+json"]);
    expect(errors).toEqual([]);
  });

  it("rejects a chart that breaks the Vega-Lite schema (the check can fail)", async () => {
    const errors = await vegaLiteErrors({ mark: "no-such-mark", data: { values: [] } });
    expect(errors.length).toBeGreaterThan(0);
    expect(
      compiledMarks({
        mark: "bar",
        data: { values: [{ a: 1 }] },
        encoding: { x: { field: "a", type: "quantitative" } },
      }),
    ).not.toEqual([]);
  });
});
