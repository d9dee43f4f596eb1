import { describe, expect, it } from "vitest";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import { WorkerDiedError } from "../../ts/protocol/errors.js";
import { tensor } from "../../ts/protocol/tensor.js";
import type { DataSpec } from "../../ts/schemas/data.js";
import type { EvaluationReport, EvaluationSpec } from "../../ts/schemas/evaluation.js";
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
// Clean training of the whole MoE: no attack, whose random start is drawn per rank.
const TRAINER: TrainerSpec = { method: "standard", epochs: 1, batch_size: 16, optimizer: { lr: 0.05 }, seed: 11 };
const probe = tensor(
  new Float32Array(4 * 3 * 8 * 8).map((_, i) => (i % 17) / 17),
  [4, 3, 8, 8],
);

// A deterministic attack (no random start): per sample, the same on a shard as on the batch.
const EVAL: EvaluationSpec = { batch_size: 7, attacks: [{ name: "pgd", steps: 2, random_start: false }] };

async function trainAndEvaluate(nprocPerNode?: number): Promise<{ logits: Float32Array; report: EvaluationReport }> {
  await using worker = await spawnWorker({ threads: 1, nprocPerNode });
  const model = await worker.createModel(TINY_MOE);
  const data = await worker.createDataset(DATA);
  const trainer = await worker.createTrainer(model, data, TRAINER);
  const { epochs } = await trainer.run();
  expect(epochs[0]?.steps).toBe(4);
  const logits = (await model.predict(probe)).logits.data as Float32Array;
  return { logits, report: await worker.evaluate(model, data, EVAL, { split: "test" }) };
}

describe("more than one process through torchrun", () => {
  it("two gloo ranks train on global batch B as one process trains on batch B", async () => {
    const single = await trainAndEvaluate();
    const ranks = await trainAndEvaluate(2);
    const [one, two] = [single.logits, ranks.logits];
    // Each rank takes half of every batch, BatchNorm uses the statistics of the whole batch
    // (GlobalBatchNorm2d) and DDP averages the halves' gradients, so both runs compute the
    // same update; only the order of float32 sums differs (the batch mean as two half-sums,
    // the gradient as the mean of two half-means). Over 4 SGD steps that moves logits of
    // order 1 by ~1e-6 (measured: at most a few 1e-7), while per-rank BatchNorm statistics
    // or unaveraged gradients move them by more than 1e-2. 1e-4 separates the two by two
    // orders of magnitude on either side.
    expect(two.length).toBe(one.length);
    const gap = Math.max(...one.map((v, i) => Math.abs(v - (two[i] as number))));
    expect(gap).toBeLessThan(1e-4);
    // Evaluation: each rank takes its part of every batch (7 = 4 + 3), the counts are summed.
    expect(ranks.report.samples).toBe(16);
    expect(ranks.report.clean.accuracy).toBe(single.report.clean.accuracy);
    expect(ranks.report.summary.ra).toEqual(single.report.summary.ra);
    expect(ranks.report.clean.expert_load).toEqual(single.report.clean.expert_load);
  }, 180_000);

  it("reports its ranks, and the death of one rank reaches the client as WorkerDiedError", async () => {
    await using worker = await spawnWorker({ threads: 1, nprocPerNode: 2 });
    const info = await worker.info();
    expect(info.distributed).toMatchObject({ backend: "gloo", world_size: 2 });
    const [, follower] = info.distributed?.pids ?? [];
    expect(follower).toBeTypeOf("number");
    const model = await worker.createModel(TINY_MOE);
    const trainer = await worker.createTrainer(model, await worker.createDataset(DATA), {
      ...TRAINER,
      epochs: 50,
    });
    const run = trainer.run();
    let killed = false;
    const error = await (async () => {
      for await (const event of run) {
        if (event.event === "step" && !killed) {
          killed = true;
          process.kill(follower as number, "SIGKILL");
        }
      }
    })().catch((e) => e);
    expect(killed).toBe(true);
    expect(error).toBeInstanceOf(WorkerDiedError);
    expect((await worker.exited).exitCode).not.toBe(0);
  }, 120_000);
});
