import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "../../ts/client/data.js";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import type { TrainingEvent } from "../../ts/schemas/events.js";
import type { ModelSpec } from "../../ts/schemas/model.js";
import { TINY_DATA, TINY_MOE } from "../fixtures/specs.js";

const MODEL: ModelSpec = TINY_MOE;

describe("typed events and results through a real worker", () => {
  let worker: SpawnedWorker;
  let data: Dataset;
  let workspace: string;

  beforeAll(async () => {
    workspace = mkdtempSync(join(tmpdir(), "advmoe-events-"));
    worker = await spawnWorker({ workspace, threads: 1 });
    data = await worker.createDataset(TINY_DATA);
  });

  afterAll(async () => {
    await worker?.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  it("streams every training event kind, each checked against its schema, and narrows on `event`", async () => {
    await using model = await worker.createModel(MODEL);
    await using trainer = await worker.createTrainer(model, data, {
      method: "advmoe",
      epochs: 1,
      batch_size: 8,
      attack: { steps: 1 },
      checkpoint_dir: "ckpt",
      eval: { attacks: [{ name: "pgd", steps: 1 }], per_class: false },
    });
    const seen = new Set<TrainingEvent["event"]>();
    const losses: number[] = [];
    let evalSamples = 0;
    const run = trainer.run();
    for await (const event of run) {
      seen.add(event.event);
      // Each branch reads fields of its own kind with no cast; a wrong field is a compile error.
      switch (event.event) {
        case "step":
          losses.push(event.data.loss);
          expect(event.data.expert_load?.length).toBe(2);
          break;
        case "progress":
          // @ts-expect-error the evaluation's progress reports `samples`, not `samples_done`
          expect(event.data.samples_done).toBeUndefined();
          expect(event.data.samples).toBeGreaterThan(0);
          break;
        case "eval":
          evalSamples = event.data.samples;
          break;
      }
    }
    const result = await run;
    expect([...seen].sort()).toEqual(["checkpoint", "epoch", "eval", "progress", "step"]);
    expect(losses.length).toBe(trainer.info.steps_per_epoch);
    expect(evalSamples).toBe(8);
    expect(result.epochs_completed).toBe(1);
    expect(result.epochs[0]!.eval?.summary.sa).toBeGreaterThanOrEqual(0);
  });

  it("streams warnings with a stable code (a prediction whose routing breaks max_share)", async () => {
    await using model = await worker.createModel(MODEL);
    const { x } = await data.take("test", 0, 8);
    const call = worker.stream("model.predict", { handle: model.handle, max_share: 0.01 }, { tensors: { x } });
    const codes: string[] = [];
    for await (const event of call) if (event.event === "warning") codes.push(event.data.code);
    expect(codes).toContain("routing_collapse");
    expect((await call).warnings.map((w) => w.code)).toEqual(codes);
  });

  it("awaits a CallStream for its result and keeps the reply's tensors on `reply`", async () => {
    await using model = await worker.createModel(MODEL);
    const report = await worker.evaluate(model, data, { attacks: [], max_samples: 4 });
    expect(report.samples).toBe(4);
    const sleep = worker.sleep({ seconds: 0.05, tick: 0.01 });
    const { result, tensors } = await sleep.reply;
    expect(result.ticks).toBeGreaterThan(0);
    expect(tensors).toEqual({});
    expect((await sleep).ticks).toBe(result.ticks);
  });

  it("frees a handle on the worker when `await using` leaves its scope", async () => {
    let handle = "";
    {
      await using model = await worker.createModel(MODEL);
      handle = model.handle;
      expect((await worker.objects("model")).map((o) => o.handle)).toContain(handle);
    }
    expect((await worker.objects("model")).map((o) => o.handle)).not.toContain(handle);
  });

  it("keeps wire specs apart from call options: predict(x, spec, options)", async () => {
    await using model = await worker.createModel(MODEL);
    const { x } = await data.take("test", 0, 5);
    const out = await model.predict(x, { batch_size: 2, routes: false }, { timeoutMs: 30_000 });
    expect(out.logits.shape).toEqual([5, 3]);
    expect(out.routes).toBeUndefined();
  });
});
