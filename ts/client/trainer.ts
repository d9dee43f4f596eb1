// A trainer held by the worker: step-by-step control of standard, PGD-AT, TRADES, AT(MoE), AdvMoE.
import type { z } from "zod";
import { JUPYTER_DISPLAY } from "../display/symbol.js";
import type { TrainingEvent } from "../schemas/events.js";
import type { EpochSummary, StepMetrics, TrainerDescription, TrainerRunResult } from "../schemas/trainer.js";
import { CallStream } from "./connection.js";
import { releaseHandle } from "./release.js";
import { type ResumedRunResult, runResumingOnCrash } from "./resume-run.js";
import type { RequestOptions, Worker } from "./worker.js";

export type TrainerInfo = z.output<typeof TrainerDescription>;
export type StepResult = z.output<typeof StepMetrics>;
export type RunResult = z.output<typeof TrainerRunResult>;
export type EpochResult = z.output<typeof EpochSummary>;

/** A handle to a trainer on the worker. */
export class Trainer {
  readonly worker: Worker;
  readonly handle: string;
  /** The worker generation that made this handle; calls after a restart raise StaleHandleError. */
  readonly generation: number;
  info: TrainerInfo;

  constructor(worker: Worker, info: TrainerInfo) {
    this.worker = worker;
    this.handle = info.handle;
    this.generation = worker.generation;
    this.info = info;
  }

  /** Method, phases, counters, learning rates, attack settings and the full spec. */
  async describe(options?: RequestOptions): Promise<TrainerInfo> {
    this.info = (
      await this.worker.request("trainer.describe", { handle: this.handle }, { ...options, handles: [this] })
    ).result;
    return this.info;
  }

  /** One minibatch step (for advmoe, of `phase`: "router" or "expert"); returns its metrics. */
  async step(options: RequestOptions & { phase?: string } = {}): Promise<StepResult> {
    const { phase, ...call } = options;
    return (await this.worker.request("trainer.step", { handle: this.handle, phase }, { ...call, handles: [this] }))
      .result;
  }

  /** Runs to the end of the current epoch, streaming `step` (and `epoch`, `eval`) events. */
  epoch(options?: RequestOptions): CallStream<RunResult, TrainingEvent> {
    return this.worker.stream("trainer.epoch", { handle: this.handle }, { ...options, handles: [this] });
  }

  /**
   * Runs `epochs` more epochs (default: up to the spec's), streaming events. Cancel with a
   * signal. With `resumeOnCrash` (a supervised worker and a `checkpoint_dir` needed), a run
   * whose worker dies resumes from its last automatic checkpoint in the restarted worker and
   * carries on to the planned epoch count; the result names the trainer and model that finished.
   */
  run(options: RequestOptions & { epochs?: number; resumeOnCrash: true }): CallStream<ResumedRunResult, TrainingEvent>;
  run(options?: RequestOptions & { epochs?: number; resumeOnCrash?: false }): CallStream<RunResult, TrainingEvent>;
  run(
    options: RequestOptions & { epochs?: number; resumeOnCrash?: boolean } = {},
  ): CallStream<RunResult | ResumedRunResult, TrainingEvent> {
    const { epochs, resumeOnCrash, ...call } = options;
    if (resumeOnCrash) {
      return new CallStream<ResumedRunResult, TrainingEvent>((onEvent) =>
        runResumingOnCrash(this, { ...call, epochs }, onEvent),
      );
    }
    return this.worker.stream("trainer.run", { handle: this.handle, epochs }, { ...call, handles: [this] });
  }

  /** Changes hyperparameters between steps (lr, router_lr, beta, eps, steps, ...); all checked first. */
  async set(changes: Record<string, number | boolean | null>, options?: RequestOptions): Promise<TrainerInfo> {
    this.info = (
      await this.worker.request("trainer.set", { handle: this.handle, changes }, { ...options, handles: [this] })
    ).result;
    return this.info;
  }

  /** Holds a running `run`/`epoch` after its current step until `resume()`. */
  async pause(): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.pause", { handle: this.handle }, { handles: [this] })).result;
    return this.info;
  }

  /** Lets a paused run go on. */
  async resume(): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.continue", { handle: this.handle }, { handles: [this] })).result;
    return this.info;
  }

  /** Writes a checkpoint (model, optimizers, schedules, RNG states, data position, counters). */
  async save(path: string, options?: RequestOptions): Promise<{ path: string; bytes: number }> {
    return (await this.worker.request("trainer.save", { handle: this.handle, path }, { ...options, handles: [this] }))
      .result;
  }

  /** Frees the trainer on the worker (its model and data stay). */
  async delete(): Promise<boolean> {
    return this.worker.deleteObject(this);
  }

  /** Renders as a table in a notebook; loads the display module on first use. */
  async [JUPYTER_DISPLAY](): Promise<Record<string, unknown>> {
    const { trainerBundle } = await import("../display/handles.js");
    return trainerBundle(this.info);
  }

  /** `await using` frees it on the worker; a worker already gone holds nothing to free. */
  async [Symbol.asyncDispose](): Promise<void> {
    await releaseHandle(this.worker, this);
  }
}
