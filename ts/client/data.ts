// A data set held by the worker (digits, synthetic, CIFAR, ImageFolder, uploaded tensors).
import type { z } from "zod";
import { JUPYTER_DISPLAY } from "../display/symbol.js";
import type { Tensor } from "../protocol/tensor.js";
import type { DataDescription } from "../schemas/data.js";
import { releaseHandle } from "./release.js";
import type { RequestOptions, Worker } from "./worker.js";

export type DataInfo = z.output<typeof DataDescription>;

/** A handle to a data set on the worker. */
export class Dataset {
  readonly worker: Worker;
  readonly handle: string;
  /** The worker generation that made this handle; calls after a restart raise StaleHandleError. */
  readonly generation: number;
  info: DataInfo;

  constructor(worker: Worker, info: DataInfo) {
    this.worker = worker;
    this.handle = info.handle;
    this.generation = worker.generation;
    this.info = info;
  }

  /** Sizes of the splits, classes, geometry and the spec with its defaults filled. */
  async describe(options?: RequestOptions): Promise<DataInfo> {
    this.info = (
      await this.worker.request("data.describe", { handle: this.handle }, { ...options, handles: [this] })
    ).result;
    return this.info;
  }

  /** Samples `start ..< start + count` of a split: x (N, C, H, W) float32 in [0, 1], y (N,) int64. */
  async take(
    split: "train" | "val" | "test" = "test",
    start = 0,
    count = 64,
    options?: RequestOptions,
  ): Promise<{ x: Tensor<"float32">; y: Tensor<"int64"> }> {
    const reply = await this.worker.request(
      "data.take",
      { handle: this.handle, split, start, count },
      { ...options, handles: [this] },
    );
    return { x: reply.tensors.x as Tensor<"float32">, y: reply.tensors.y as Tensor<"int64"> };
  }

  /** Frees the data set on the worker. */
  async delete(): Promise<boolean> {
    return this.worker.deleteObject(this);
  }

  /** Renders as a table in a notebook; loads the display module on first use. */
  async [JUPYTER_DISPLAY](): Promise<Record<string, unknown>> {
    const { datasetBundle } = await import("../display/handles.js");
    return datasetBundle(this.info);
  }

  /** `await using` frees it on the worker; a worker already gone holds nothing to free. */
  async [Symbol.asyncDispose](): Promise<void> {
    await releaseHandle(this.worker, this);
  }
}
