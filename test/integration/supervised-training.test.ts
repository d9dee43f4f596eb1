import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import { InvalidSpecError, StaleHandleError } from "../../ts/protocol/errors.js";
import { type Tensor, tensor } from "../../ts/protocol/tensor.js";
import type { DataSpec } from "../../ts/schemas/data.js";
import type { TrainerSpec } from "../../ts/schemas/trainer.js";
import { TINY_MOE } from "../fixtures/specs.js";

const DATA: DataSpec = {
  kind: "synthetic",
  num_classes: 3,
  size: 8,
  channels: 3,
  train_size: 64,
  test_size: 16,
  seed: 3,
};
// 4 batches, each used by a router and an expert step: 8 steps an epoch, 16 in all.
const TRAINER: TrainerSpec = {
  method: "advmoe",
  epochs: 2,
  batch_size: 16,
  attack: { steps: 1 },
  optimizer: { lr: 0.05 },
  seed: 11,
  checkpoint_dir: "ckpt",
  checkpoint_every_steps: 3,
};
const probe = tensor(
  new Float32Array(4 * 3 * 8 * 8).map((_, i) => (i % 17) / 17),
  [4, 3, 8, 8],
);

function bytes(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

describe("a run that resumes on crash", () => {
  it("survives a SIGKILL mid-run and ends with the weights of an uninterrupted run", async () => {
    const straight = await (async () => {
      await using worker = await spawnWorker({
        workspace: mkdtempSync(join(tmpdir(), "advmoe-straight-")),
        threads: 1,
      });
      const model = await worker.createModel(TINY_MOE);
      const trainer = await worker.createTrainer(model, await worker.createDataset(DATA), TRAINER);
      await trainer.run();
      return bytes((await model.predict(probe)).logits);
    })();

    const workspace = mkdtempSync(join(tmpdir(), "advmoe-supervised-"));
    await using worker = await spawnWorker({ workspace, threads: 1, restart: { maxRestarts: 2, backoffMs: 0 } });
    const model = await worker.createModel(TINY_MOE);
    const trainer = await worker.createTrainer(model, await worker.createDataset(DATA), TRAINER);
    const run = trainer.run({ resumeOnCrash: true });
    let killedAt: number | undefined;
    const steps: number[] = [];
    for await (const event of run) {
      if (event.event !== "step") continue;
      steps.push(event.data.step);
      // Killed mid-run, after a checkpoint: what came after it is lost and redone.
      if (event.data.step === 5 && killedAt === undefined) {
        killedAt = worker.pid;
        worker.kill("SIGKILL");
      }
    }
    const result = await run;

    expect(killedAt).toBeDefined();
    expect(worker.generation).toBe(1);
    expect(result.restarts).toBe(1);
    expect(result.epochs_completed).toBe(2);
    expect(result.epochs.map((e) => e.epochs_completed)).toEqual([1, 2]);
    expect(steps.at(-1)).toBe(16);
    expect(result.trainer).not.toBe(trainer);
    expect(result.model).toBeDefined();
    expect(await model.predict(probe).catch((e) => e)).toBeInstanceOf(StaleHandleError);
    const resumed = bytes((await result.model!.predict(probe)).logits);
    expect(resumed.equals(straight)).toBe(true);
  }, 240_000); // two workers train, and one of them twice over a stretch

  it("refuses resumeOnCrash without a supervised worker or without checkpoint_dir", async () => {
    await using plain = await spawnWorker({ threads: 1 });
    const model = await plain.createModel(TINY_MOE);
    const data = await plain.createDataset(DATA);
    const trainer = await plain.createTrainer(model, data, TRAINER);
    const unsupervised = await trainer.run({ resumeOnCrash: true }).catch((e) => e);
    expect(unsupervised).toBeInstanceOf(InvalidSpecError);
    expect(unsupervised.path).toBe("resumeOnCrash");

    await using supervised = await spawnWorker({ threads: 1, restart: { maxRestarts: 1 } });
    const m = await supervised.createModel(TINY_MOE);
    const d = await supervised.createDataset(DATA);
    const noDir = await supervised.createTrainer(m, d, { ...TRAINER, checkpoint_dir: null });
    const err = await noDir.run({ resumeOnCrash: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidSpecError);
    expect(err.path).toBe("spec.checkpoint_dir");
    expect((await noDir.describe()).global_step).toBe(0);
  });
});
