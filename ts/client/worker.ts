// The typed worker API: one method per worker method, params and results checked by zod.
import type { z } from "zod";
import { InvalidSpecError } from "../protocol/errors.js";
import type { Tensor } from "../protocol/tensor.js";
import type { AttackRequestSpec } from "../schemas/attack.js";
import type { DataSpec } from "../schemas/data.js";
import type { EvaluationReport, EvaluationSpec } from "../schemas/evaluation.js";
import type { ModelSpec } from "../schemas/model.js";
import { METHODS, type MethodName, type ParamsOf, type ResultOf } from "../schemas/registry.js";
import type { TrainerSpec } from "../schemas/trainer.js";
import { type CallOptions, type CallStream, type Connection, type Reply, streamCall } from "./connection.js";
import { Dataset } from "./data.js";
import { Model } from "./model.js";
import { Trainer } from "./trainer.js";

/** How the SDK found the Python interpreter it launched. */
export interface PythonChoice {
  path: string;
  source: "option" | "env" | "venv";
}

/** Options of a typed call; like CallOptions, plus local validation control. */
export interface TypedCallOptions extends CallOptions {
  /** Check params with zod before sending (default true). */
  validate?: boolean;
}

/** Checks params with the method's zod schema; throws InvalidSpecError naming the field. */
export function checkParams<M extends MethodName>(method: M, params: unknown): z.output<(typeof METHODS)[M]["params"]> {
  const parsed = METHODS[method].params.safeParse(params);
  if (parsed.success) return parsed.data as never;
  const issue = parsed.error.issues[0];
  const path = issue?.path.join(".") ?? "";
  throw new InvalidSpecError("invalid_spec", `${method}: ${path || "(root)"}: ${issue?.message ?? "invalid"}`, {
    path,
    rule: issue?.code ?? "invalid",
    issues: parsed.error.issues,
  });
}

/** A connected worker: typed methods over a signed connection. */
export class Worker {
  readonly connection: Connection;
  constructor(connection: Connection) {
    this.connection = connection;
  }

  /** Calls `method`, validating params and result with the wire schemas. */
  async request<M extends MethodName>(
    method: M,
    params: ParamsOf<M>,
    options: TypedCallOptions = {},
  ): Promise<Reply<ResultOf<M>>> {
    const sent = options.validate === false ? params : checkParams(method, params);
    const reply = await this.connection.call(method, sent as Record<string, unknown>, options);
    return { result: METHODS[method].result.parse(reply.result) as ResultOf<M>, tensors: reply.tensors };
  }

  /** Like `request`, but the events arrive as an async iterable alongside the result. */
  stream<M extends MethodName>(
    method: M,
    params: ParamsOf<M>,
    options: TypedCallOptions = {},
  ): CallStream<ResultOf<M>> {
    return streamCall((onEvent) =>
      this.request(method, params, {
        ...options,
        onEvent: (e) => {
          options.onEvent?.(e);
          onEvent(e);
        },
      }),
    );
  }

  /** Versions, devices, workspace and message counters of the worker. */
  async info(options?: TypedCallOptions): Promise<ResultOf<"info">> {
    return (await this.request("info", {}, options)).result;
  }

  /** Sends tensors and gets them back unchanged (a transport check). */
  async echo(tensors: Record<string, Tensor>, options: TypedCallOptions = {}): Promise<Record<string, Tensor>> {
    return (await this.request("echo", {}, { ...options, tensors })).tensors;
  }

  /** A cancellable long request that streams progress events (for tests and demos). */
  sleep(params: ParamsOf<"sleep">, options?: TypedCallOptions): CallStream<ResultOf<"sleep">> {
    return this.stream("sleep", params, options);
  }

  /** Builds a model (dense or MoE) on the worker from a spec. */
  async createModel(spec: ModelSpec, options: TypedCallOptions & { device?: string } = {}): Promise<Model> {
    const { device, ...call } = options;
    return new Model(this, (await this.request("model.create", { spec, device }, call)).result);
  }

  /** Loads a checkpoint written by `Model.save` (path inside the worker's workspace). */
  async loadModel(path: string, options: TypedCallOptions & { device?: string } = {}): Promise<Model> {
    const { device, ...call } = options;
    return new Model(this, (await this.request("model.load", { path, device }, call)).result);
  }

  /** Builds a data set on the worker; `tensors` data sets name tensors passed in `options.tensors`. */
  async createDataset(spec: DataSpec, options: TypedCallOptions = {}): Promise<Dataset> {
    return new Dataset(this, (await this.request("data.create", { spec }, options)).result);
  }

  /** A trainer for `model` on `data`'s train split (val split for epoch-end evaluation). */
  async createTrainer(model: Model, data: Dataset, spec: TrainerSpec, options?: TypedCallOptions): Promise<Trainer> {
    const params = { model: model.handle, data: data.handle, spec };
    return new Trainer(this, (await this.request("trainer.create", params, options)).result);
  }

  /** Continues a trainer from its checkpoint, exactly where it stopped. */
  async resumeTrainer(
    path: string,
    options: TypedCallOptions & { model?: Model; data?: Dataset } = {},
  ): Promise<{ trainer: Trainer; model: Model }> {
    const { model, data, ...call } = options;
    const params = { path, model: model?.handle, data: data?.handle };
    const trainer = new Trainer(this, (await this.request("trainer.resume", params, call)).result);
    const resumed =
      model ?? new Model(this, (await this.request("model.describe", { handle: trainer.info.model })).result);
    return { trainer, model: resumed };
  }

  /** Adversarial examples for (x, y) under `attack`; x_adv comes back as a tensor. */
  async attack(
    model: Model,
    x: Tensor,
    y: Tensor,
    attack: AttackRequestSpec,
    options: TypedCallOptions = {},
  ): Promise<ResultOf<"attack"> & { xAdv: Tensor<"float32"> }> {
    const reply = await this.request("attack", { model: model.handle, attack }, { ...options, tensors: { x, y } });
    return { ...reply.result, xAdv: reply.tensors.x_adv as Tensor<"float32"> };
  }

  /**
   * The robustness report of `model`: SA, RA per attack, AA, routing agreement, expert load,
   * per-class accuracy, MACs, images/s. Data: a data set split, or tensors `{ x, y }`.
   * Progress events stream; the result is never a partial report.
   */
  evaluate(
    model: Model,
    data: Dataset | { x: Tensor; y: Tensor },
    spec: EvaluationSpec = {},
    options: TypedCallOptions & { split?: "train" | "val" | "test" } = {},
  ): CallStream<EvaluationReport> {
    const { split, ...call } = options;
    if (data instanceof Dataset) {
      return this.stream("evaluate", { model: model.handle, data: data.handle, split, spec }, call);
    }
    return this.stream("evaluate", { model: model.handle, spec }, { ...call, tensors: { x: data.x, y: data.y } });
  }

  /** Objects held by the worker (models, data sets, trainers...). */
  async objects(kind?: string): Promise<ResultOf<"object.list">["objects"]> {
    return (await this.request("object.list", kind ? { kind } : {})).result.objects;
  }

  /** Frees an object held by the worker; false when the handle was unknown. */
  async deleteObject(handle: string): Promise<boolean> {
    return (await this.request("object.delete", { handle })).result.deleted;
  }

  /** Asks the worker to stop; later calls reject with WorkerClosedError. */
  async shutdown(): Promise<void> {
    await this.request("shutdown", {});
    this.connection.close();
  }

  /** Closes the connection (a spawned worker is also stopped: see SpawnedWorker). */
  async close(): Promise<void> {
    this.connection.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
