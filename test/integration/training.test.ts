import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "../../ts/client/data.js";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import { CancelledError, InvalidSpecError, NotFoundError } from "../../ts/protocol/errors.js";
import { type Tensor, tensor } from "../../ts/protocol/tensor.js";
import type { DataSpec } from "../../ts/schemas/data.js";
import type { ModelSpec } from "../../ts/schemas/model.js";
import type { TrainerSpec } from "../../ts/schemas/trainer.js";
import { TINY_MOE } from "../fixtures/specs.js";
import { TRANSPORTS } from "./transports.js";

const DATA: DataSpec = {
  kind: "synthetic",
  num_classes: 3,
  size: 8,
  channels: 3,
  train_size: 96,
  test_size: 48,
  seed: 3,
};
const MODEL: ModelSpec = TINY_MOE;
const TRAINER: TrainerSpec = {
  method: "advmoe",
  epochs: 3,
  batch_size: 16,
  attack: { steps: 1 },
  optimizer: { lr: 0.05 },
  seed: 11,
};

function bytes(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

describe.each(TRANSPORTS)("training through the wire with %s", (transport) => {
  let worker: SpawnedWorker;
  let workspace: string;
  let data: Dataset;
  beforeAll(async () => {
    workspace = mkdtempSync(join(tmpdir(), "advmoe-train-"));
    worker = await spawnWorker({ workspace, threads: 1, transport });
    data = await worker.createDataset(DATA);
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("runs one step of a named AdvMoE phase and reports its metrics", async () => {
    const model = await worker.createModel(MODEL);
    const trainer = await worker.createTrainer(model, data, TRAINER);
    expect(trainer.info.phases).toEqual(["router", "expert"]);
    const router = await trainer.step({ phase: "router" });
    expect(router.phase).toBe("router");
    expect(Number.isFinite(router.loss)).toBe(true);
    const expert = await trainer.step({ phase: "expert" });
    expect(expert.phase).toBe("expert");
    expect(expert.step).toBe(2);
    const err = await trainer.step({ phase: "joint" }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidSpecError);
    expect(err.path).toBe("phase");
  });

  it("changes hyperparameters between steps, and refuses invalid ones", async () => {
    const model = await worker.createModel(MODEL);
    const trainer = await worker.createTrainer(model, data, TRAINER);
    await trainer.step();
    const info = await trainer.set({ lr: 0.01, eps: 4 / 255 });
    expect(info.spec).toMatchObject({ optimizer: { lr: 0.01 }, attack: { eps: 4 / 255 } });
    const bad = await trainer.set({ lr: -1 }).catch((e) => e);
    expect(bad).toBeInstanceOf(InvalidSpecError);
    expect(bad.path).toContain("lr");
    expect(((await trainer.describe()).spec as { optimizer: { lr: number } }).optimizer.lr).toBe(0.01);
  });

  it("streams step events, pauses, resumes and cancels a run leaving a consistent trainer", async () => {
    const model = await worker.createModel(MODEL);
    const trainer = await worker.createTrainer(model, data, { ...TRAINER, epochs: 50 });
    const controller = new AbortController();
    const run = trainer.run({ signal: controller.signal });
    const seen: string[] = [];
    for await (const event of run) {
      seen.push(event.event);
      if (event.event === "step" && !seen.includes("paused")) {
        expect((await trainer.pause()).paused).toBe(true);
      }
      if (event.event === "paused") await trainer.resume();
      if (event.event === "resumed") controller.abort();
      if (controller.signal.aborted) break;
    }
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toContain("paused");
    const after = await trainer.describe();
    expect(after.paused).toBe(false);
    expect(after.global_step).toBeGreaterThan(0);
    const next = await trainer.step();
    expect(next.step).toBeGreaterThan(after.global_step);
  });

  it("evaluates a model on a data split and on uploaded tensors", async () => {
    const model = await worker.createModel(MODEL);
    const call = worker.evaluate(model, data, { attacks: [{ name: "pgd", steps: 3 }], batch_size: 16 });
    let progress = 0;
    for await (const e of call) if (e.event === "progress") progress++;
    const report = await call;
    expect(progress).toBe(3);
    expect(report.samples).toBe(48);
    expect(report.attacks[0]!.settings).toMatchObject({ name: "pgd", norm: "linf", steps: 3, eps: 8 / 255 });
    expect(report.attacks[0]!.robust_accuracy).toBeLessThanOrEqual(report.summary.sa);
    expect(report.attacks[0]!.routing_agreement).not.toBeNull();
    const { x, y } = await data.take("test", 0, 10);
    const small = await worker.evaluate(model, { x, y }, { attacks: [] });
    expect(small.samples).toBe(10);
  });

  it("returns adversarial examples inside the eps-ball", async () => {
    const model = await worker.createModel(MODEL);
    const { x, y } = await data.take("test", 0, 8);
    const out = await worker.attack(model, x, y, { name: "pgd", eps: 4 / 255, steps: 2 });
    expect(out.xAdv.shape).toEqual(x.shape);
    expect(out.max_perturbation).toBeLessThanOrEqual(4 / 255 + 1e-6);
    out.xAdv.data.forEach((v, i) => {
      expect(Math.abs(v - x.data[i]!)).toBeLessThanOrEqual(4 / 255 + 1e-6);
    });
    expect(out.adversarial_accuracy).toBeLessThanOrEqual(out.clean_accuracy);
    expect(out.settings).toMatchObject({ name: "pgd", eps: 4 / 255, steps: 2, seed: 0, restarts: 1 });
    expect(Object.values(out.settings)).not.toContain(null);
  });

  it("attacking and evaluating a model a trainer left in training mode never changes it", async () => {
    const model = await worker.createModel(MODEL);
    const trainer = await worker.createTrainer(model, data, TRAINER);
    await trainer.step(); // the model is now in training mode, BatchNorm statistics live
    const { x, y } = await data.take("test", 0, 16);
    const before = await model.predict(x);
    const attacked = await worker.attack(model, x, y, { name: "pgd", steps: 2 });
    const clean = await model.predict(x);
    await worker.evaluate(model, data, { attacks: [{ name: "router", steps: 2 }], max_samples: 16 });
    const after = await model.predict(x);
    expect(Array.from(clean.logits.data)).toEqual(Array.from(before.logits.data));
    expect(Array.from(after.logits.data)).toEqual(Array.from(before.logits.data));
    expect((await model.describe()).training).toBe(true);
    // the attack's clean accuracy is the one predict gives
    const k = before.logits.shape[1]!;
    const logits = Array.from(before.logits.data);
    let correct = 0;
    for (let i = 0; i < 16; i++) {
      const row = logits.slice(i * k, (i + 1) * k);
      if (row.indexOf(Math.max(...row)) === Number(y.data[i])) correct++;
    }
    expect(attacked.clean_accuracy).toBe(correct / 16);
  });

  describe("bad input gets a typed error naming the field", () => {
    it("unknown method, negative lr, batch size 0", async () => {
      const model = await worker.createModel(MODEL);
      for (const [spec, path] of [
        [{ ...TRAINER, method: "sgd-at" }, "spec.method"],
        [{ ...TRAINER, optimizer: { lr: -0.1 } }, "spec.optimizer.lr"],
        [{ ...TRAINER, batch_size: 0 }, "spec.batch_size"],
      ] as const) {
        const err = await worker.createTrainer(model, data, spec as TrainerSpec, { validate: false }).catch((e) => e);
        expect(err).toBeInstanceOf(InvalidSpecError);
        expect(err.path).toBe(path);
      }
    });

    it("a missing data path, and an unknown data handle", async () => {
      const err = await worker.createDataset({ kind: "cifar10", root: "no/such/dir" }).catch((e) => e);
      expect(err.message).toContain("root");
      expect(err.code).toMatch(/invalid_spec|bad_data/);
      const model = await worker.createModel(MODEL);
      const missing = await worker
        .request("trainer.create", { model: model.handle, data: "data:999", spec: TRAINER })
        .catch((e) => e);
      expect(missing).toBeInstanceOf(NotFoundError);
    });

    it("labels out of class range for an attack", async () => {
      const model = await worker.createModel(MODEL);
      const { x } = await data.take("test", 0, 2);
      const y = tensor(new BigInt64Array([0n, 7n]), [2]);
      const err = await worker.attack(model, x, y, { name: "fgsm" }).catch((e) => e);
      expect(err.code).toBe("bad_tensor");
      expect(err.message).toMatch(/\[0, 3\)/);
    });
  });
});

describe("exact resume through the wire", () => {
  const probe = tensor(
    new Float32Array(4 * 3 * 8 * 8).map((_, i) => (i % 17) / 17),
    [4, 3, 8, 8],
  );

  async function train(workspace: string, steps: number): Promise<Buffer> {
    await using worker = await spawnWorker({ workspace, threads: 1 });
    const data = await worker.createDataset(DATA);
    const model = await worker.createModel(MODEL);
    const trainer = await worker.createTrainer(model, data, TRAINER);
    for (let i = 0; i < steps; i++) await trainer.step();
    return bytes((await model.predict(probe)).logits);
  }

  async function resume(workspace: string, path: string, steps: number): Promise<Buffer> {
    await using worker = await spawnWorker({ workspace, threads: 1 });
    const { trainer, model } = await worker.resumeTrainer(path);
    for (let i = 0; i < steps; i++) await trainer.step();
    return bytes((await model.predict(probe)).logits);
  }

  it("ends bit-identical to an uninterrupted run, also after a SIGKILL between checkpoints", async () => {
    const workspace = mkdtempSync(join(tmpdir(), "advmoe-resume-"));
    const straight = await train(workspace, 9);
    // A worker that checkpoints at step 5, trains on, and is killed without warning.
    const doomed = await spawnWorker({ workspace, threads: 1 });
    const data = await doomed.createDataset(DATA);
    const model = await doomed.createModel(MODEL);
    const trainer = await doomed.createTrainer(model, data, TRAINER);
    for (let i = 0; i < 5; i++) await trainer.step();
    await trainer.save("ckpt/t5.pt");
    await trainer.step();
    await trainer.step();
    doomed.kill("SIGKILL");
    await doomed.exited;
    const resumed = await resume(workspace, "ckpt/t5.pt", 4);
    expect(resumed.equals(straight)).toBe(true);
  }, 180_000); // three workers, one after another
});
