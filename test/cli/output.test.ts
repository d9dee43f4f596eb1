import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { Reporter } from "../../ts/cli/output.js";
import type { AnyEvent } from "../../ts/schemas/events.js";
import { EpochSummary, StepMetrics } from "../../ts/schemas/trainer.js";
import { workspace } from "./run-cli.js";

/** A stream that keeps what is written; `tty` makes it look like a terminal. */
function screen(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & { isTTY: boolean; columns: number };
  stream.isTTY = tty;
  stream.columns = 200;
  let text = "";
  (stream as unknown as PassThrough).on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

const step = (n: number): AnyEvent => ({
  event: "step",
  tensors: {},
  data: StepMetrics.parse({
    phase: "joint",
    step: n,
    epoch: 0,
    batch: n - 1,
    loss: 1.25,
    terms: {},
    clean_acc: 0.5,
    adv_acc: 0.25,
    router_entropy: null,
    expert_load: [0.75, 0.25],
    expert_load_adv: null,
    grad_norm: null,
    lr: { model: 0.1 },
    step_time_s: 0.01,
    images_per_s: 100,
    epoch_end: n === 4,
  }),
});

const epoch: AnyEvent = {
  event: "epoch",
  tensors: {},
  data: EpochSummary.parse({
    epoch: 0,
    epochs_completed: 1,
    global_step: 4,
    steps: 4,
    loss: 1.5,
    clean_acc: 0.5,
    adv_acc: 0.25,
    expert_load: [0.6, 0.4],
    time_s: 2,
    images_per_s: 100,
    lr: { model: 0.1 },
  }),
};

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("Reporter", () => {
  it("draws a progress bar with steps, loss, accuracies and expert load on a terminal", async () => {
    const out = screen(true);
    const reporter = new Reporter({ quiet: false }, out.stream);
    reporter.startTraining(4, 2);
    for (let n = 1; n <= 4; n++) reporter.event("train", step(n));
    reporter.event("train", epoch);
    reporter.close();
    await tick();
    const text = out.text();
    expect(text).toContain("epoch 1/2 |");
    expect(text).toContain("4/4 steps");
    expect(text).toContain("ETA");
    expect(text).toContain("loss 1.2500 | clean 50.0% adv 25.0% | load 0.75/0.25");
    expect(text).toContain("epoch 1/2: loss 1.5000, clean 50.0%, adv 25.0%, load 0.60/0.40, 2.0 s\n");
  });

  it("writes one line per epoch and no bar without a terminal, and nothing with quiet", async () => {
    const plain = screen(false);
    const reporter = new Reporter({ quiet: false }, plain.stream);
    reporter.startTraining(4, 2);
    for (let n = 1; n <= 4; n++) reporter.event("train", step(n));
    reporter.event("train", epoch);
    reporter.close();
    await tick();
    expect(plain.text()).toBe("epoch 1/2: loss 1.5000, clean 50.0%, adv 25.0%, load 0.60/0.40, 2.0 s\n");

    const silent = screen(true);
    const quiet = new Reporter({ quiet: true }, silent.stream);
    quiet.event("train", step(1));
    quiet.event("train", epoch);
    quiet.close();
    await tick();
    expect(silent.text()).toBe("");
  });

  it("writes each JSONL line as the event comes, before the run ends", () => {
    const file = join(workspace("jsonl"), "events.jsonl");
    const reporter = new Reporter({ quiet: true, jsonl: file });
    reporter.event("train", step(1));
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ source: "train", event: "step", data: step(1).data });
    reporter.event("train", step(2));
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(2);
    reporter.close();
  });
});
