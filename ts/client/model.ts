// A model held by the worker, addressed by its handle.
import type { z } from "zod";
import { JUPYTER_DISPLAY } from "../display/symbol.js";
import type { Tensor } from "../protocol/tensor.js";
import type { ModelDescription, ModelPredictResult } from "../schemas/model.js";
import type { ParamsOf } from "../schemas/registry.js";
import { releaseHandle } from "./release.js";
import type { RequestOptions, Worker } from "./worker.js";

export type ModelInfo = z.output<typeof ModelDescription>;

/** What `predict` returns: logits, and for MoE models the routing of every sample. */
export interface Prediction extends z.output<typeof ModelPredictResult> {
  /** (B, K) float32 logits. */
  logits: Tensor<"float32">;
  /** (B, L) int64: chosen expert per sample and routing layer (MoE models, when asked). */
  routes?: Tensor<"int64">;
  /** (B, L, E) float32 router probabilities (MoE models, when asked). */
  scores?: Tensor<"float32">;
}

/** What `Model.predict` sends: batch size, whether routes come back, the collapse threshold. */
export type PredictSpec = Omit<ParamsOf<"model.predict">, "handle">;

/** A handle to a model on the worker; methods are calls over the wire. */
export class Model {
  readonly worker: Worker;
  readonly handle: string;
  /** The worker generation that made this handle; calls after a restart raise StaleHandleError. */
  readonly generation: number;
  /** The description returned when the model was created or loaded. */
  info: ModelInfo;

  constructor(worker: Worker, info: ModelInfo) {
    this.worker = worker;
    this.handle = info.handle;
    this.generation = worker.generation;
    this.info = info;
  }

  /** Architecture, MoE layout, parameter counts, MACs per sample, device, execution path. */
  async describe(options?: RequestOptions): Promise<ModelInfo> {
    this.info = (
      await this.worker.request("model.describe", { handle: this.handle }, { ...options, handles: [this] })
    ).result;
    return this.info;
  }

  /** Switches the MoE execution path (`sparse` or `masked`) or moves the model to a device. */
  async configure(changes: Omit<ParamsOf<"model.configure">, "handle">, options?: RequestOptions): Promise<ModelInfo> {
    this.info = (
      await this.worker.request("model.configure", { handle: this.handle, ...changes }, { ...options, handles: [this] })
    ).result;
    return this.info;
  }

  /** Runs the model on a (B, C, H, W) float tensor with pixels in [0, 1]. */
  async predict(x: Tensor, spec: PredictSpec = {}, options: RequestOptions = {}): Promise<Prediction> {
    const reply = await this.worker.request(
      "model.predict",
      { ...spec, handle: this.handle },
      { ...options, tensors: { x }, handles: [this] },
    );
    return {
      ...reply.result,
      logits: reply.tensors.logits as Tensor<"float32">,
      routes: reply.tensors.routes as Tensor<"int64"> | undefined,
      scores: reply.tensors.scores as Tensor<"float32"> | undefined,
    };
  }

  /** Writes a self-describing checkpoint (atomic) at `path` inside the worker's workspace. */
  async save(path: string, options?: RequestOptions): Promise<{ path: string; bytes: number }> {
    return (await this.worker.request("model.save", { handle: this.handle, path }, { ...options, handles: [this] }))
      .result;
  }

  /** Renders the description as a table in a notebook; loads the display module on first use. */
  async [JUPYTER_DISPLAY](): Promise<Record<string, unknown>> {
    const { modelBundle } = await import("../display/model.js");
    return modelBundle(this.info);
  }

  /** Frees the model on the worker. */
  async delete(): Promise<boolean> {
    return this.worker.deleteObject(this);
  }

  /** `await using` frees it on the worker; a worker already gone holds nothing to free. */
  async [Symbol.asyncDispose](): Promise<void> {
    await releaseHandle(this.worker, this);
  }
}
