// A trainer held by the worker: step-by-step control of standard, PGD-AT, TRADES, AT(MoE), AdvMoE.
import type { z } from "zod";
import type { StepMetrics, TrainerDescription, TrainerRunResult } from "../schemas/trainer.js";
import type { CallStream } from "./connection.js";
import type { TypedCallOptions, Worker } from "./worker.js";

export type TrainerInfo = z.output<typeof TrainerDescription>;
export type StepResult = z.output<typeof StepMetrics>;
export type RunResult = z.output<typeof TrainerRunResult>;

/** A handle to a trainer on the worker. */
export class Trainer {
  readonly worker: Worker;
  readonly handle: string;
  info: TrainerInfo;

  constructor(worker: Worker, info: TrainerInfo) {
    this.worker = worker;
    this.handle = info.handle;
    this.info = info;
  }

  /** Method, phases, counters, learning rates, attack settings and the full spec. */
  async describe(options?: TypedCallOptions): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.describe", { handle: this.handle }, options)).result;
    return this.info;
  }

  /** One minibatch step (for advmoe, of `phase`: "router" or "expert"); returns its metrics. */
  async step(options: TypedCallOptions & { phase?: string } = {}): Promise<StepResult> {
    const { phase, ...call } = options;
    return (await this.worker.request("trainer.step", { handle: this.handle, phase }, call)).result;
  }

  /** Runs to the end of the current epoch, streaming `step` (and `epoch`, `eval`) events. */
  epoch(options?: TypedCallOptions): CallStream<RunResult> {
    return this.worker.stream("trainer.epoch", { handle: this.handle }, options);
  }

  /** Runs `epochs` more epochs (default: up to the spec's), streaming events. Cancel with a signal. */
  run(options: TypedCallOptions & { epochs?: number } = {}): CallStream<RunResult> {
    const { epochs, ...call } = options;
    return this.worker.stream("trainer.run", { handle: this.handle, epochs }, call);
  }

  /** Changes hyperparameters between steps (lr, router_lr, beta, eps, steps, ...); all checked first. */
  async set(changes: Record<string, number | boolean | null>, options?: TypedCallOptions): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.set", { handle: this.handle, changes }, options)).result;
    return this.info;
  }

  /** Holds a running `run`/`epoch` after its current step until `resume()`. */
  async pause(): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.pause", { handle: this.handle })).result;
    return this.info;
  }

  /** Lets a paused run go on. */
  async resume(): Promise<TrainerInfo> {
    this.info = (await this.worker.request("trainer.continue", { handle: this.handle })).result;
    return this.info;
  }

  /** Writes a checkpoint (model, optimizers, schedules, RNG states, data position, counters). */
  async save(path: string, options?: TypedCallOptions): Promise<{ path: string; bytes: number }> {
    return (await this.worker.request("trainer.save", { handle: this.handle, path }, options)).result;
  }

  /** Frees the trainer on the worker (its model and data stay). */
  async delete(): Promise<boolean> {
    return this.worker.deleteObject(this.handle);
  }
}
