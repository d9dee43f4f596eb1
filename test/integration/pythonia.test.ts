import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "../../ts/client/data.js";
import { resolvePython } from "../../ts/launcher/python.js";
import { type PyProxy, type PythoniaWorker, spawnPythoniaWorker } from "../../ts/launcher/pythonia.js";
import { LaunchError } from "../../ts/protocol/errors.js";
import type { ModelSpec } from "../../ts/schemas/model.js";

const MODEL: ModelSpec = {
  arch: "resnet18",
  width: 0.0625, // a 4-channel stem
  ratio: 0.5,
  input_size: 8,
  num_classes: 3,
  moe: { experts: 2, router_width: 0.25 },
};

/** A Python list behind a proxy, copied out as numbers. */
async function numbers(tensor: PyProxy): Promise<number[]> {
  return (await (await tensor.flatten()).tolist()).valueOf();
}

describe("pythonia launch mode: live objects of a real worker", () => {
  let worker: PythoniaWorker;
  let data: Dataset;
  let workspace: string;

  beforeAll(async () => {
    workspace = mkdtempSync(join(tmpdir(), "advmoe-pythonia-"));
    worker = await spawnPythoniaWorker({ workspace, threads: 1 });
    data = await worker.createDataset({
      kind: "synthetic",
      num_classes: 3,
      size: 8,
      channels: 3,
      train_size: 16,
      test_size: 8,
      seed: 3,
    });
  });

  afterAll(async () => {
    await worker?.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  it("serves the protocol from a thread of pythonia's interpreter, the one asked for", async () => {
    const info = await worker.info();
    expect(info.pid).toBe(worker.pid);
    expect(info.pid).not.toBe(process.pid);
    expect(resolve(info.executable)).toBe(resolve(resolvePython().path));
    expect(worker.python.source).toBe("venv");
  });

  it("reads a conv weight's shape and a BatchNorm's running mean through a proxy to the real nn.Module", async () => {
    await using model = await worker.createModel({ ...MODEL, seed: 5 });
    const module = await worker.python.object(model);
    const stem = await module.backbone.stem;
    const conv = await stem.__getitem__(0);
    expect(await (await conv.weight.shape).valueOf()).toEqual([4, 3, 3, 3]);
    const bn = await stem.__getitem__(1);
    expect(await numbers(await bn.running_mean)).toEqual([0, 0, 0, 0]);
    await using trainer = await worker.createTrainer(model, data, { method: "standard", batch_size: 8 });
    await trainer.step();
    // The proxy is the live module, not a copy: the step's batch statistics show through it.
    const after = await numbers(await bn.running_mean);
    expect(after).toHaveLength(4);
    expect(after.some((v) => v !== 0)).toBe(true);
  });

  it("freezes a layer through a proxy, and the trainer leaves it alone", async () => {
    await using model = await worker.createModel({ ...MODEL, seed: 6 });
    const module = await worker.python.object(model);
    const conv = await (await module.backbone.stem).__getitem__(0);
    await (await conv.weight).requires_grad_(false);
    const fc = await module.backbone.fc;
    const [convBefore, fcBefore] = [await numbers(await conv.weight), await numbers(await fc.weight)];
    await using trainer = await worker.createTrainer(model, data, {
      method: "standard",
      batch_size: 8,
      optimizer: { lr: 0.1, weight_decay: 0 },
    });
    await trainer.step();
    expect(await numbers(await conv.weight)).toEqual(convBefore);
    expect(await numbers(await fc.weight)).not.toEqual(fcBefore);
    expect(await (await conv.weight).requires_grad.valueOf()).toBe(false);
  });

  it("seeds the worker's torch through an imported module: unseeded models come out equal", async () => {
    const torch = await worker.python.import("torch");
    const { x } = await data.take("test", 0, 4);
    const logits = async () => {
      await using model = await worker.createModel(MODEL); // no seed: the global RNG decides
      return Array.from((await model.predict(x, { routes: false })).logits.data);
    };
    await torch.manual_seed(1234);
    const first = await logits();
    const second = await logits();
    await torch.manual_seed(1234);
    const again = await logits();
    expect(again).toEqual(first);
    expect(second).not.toEqual(first);
  });
});

describe("pythonia launch mode under Deno", () => {
  it("is refused with a LaunchError that says why", async () => {
    const scope = globalThis as { Deno?: unknown };
    scope.Deno = { version: { deno: "2" } };
    try {
      const err = await spawnPythoniaWorker().catch((e) => e);
      expect(err).toBeInstanceOf(LaunchError);
      expect(err.message).toMatch(/needs Node/);
      expect(err.details).toEqual({ runtime: "deno" });
    } finally {
      delete scope.Deno;
    }
  });
});
