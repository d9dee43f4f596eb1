// The typed worker API: one method per worker method; params, results and events checked by zod.
import type { z } from "zod";
import { InvalidSpecError, ProtocolError, StaleHandleError, WorkerClosedError } from "../protocol/errors.js";
import type { Tensor } from "../protocol/tensor.js";
import type { AttackRequestSpec } from "../schemas/attack.js";
import type { DataSpec } from "../schemas/data.js";
import type { EvaluationReport, EvaluationSpec } from "../schemas/evaluation.js";
import { type EventOf, METHOD_EVENTS } from "../schemas/events.js";
import type { ModelSpec } from "../schemas/model.js";
import { METHODS, type MethodName, type ParamsOf, type ResultOf } from "../schemas/registry.js";
import type { TrainerSpec } from "../schemas/trainer.js";
import { CallStream, type Connection, type Reply, type WorkerEvent } from "./connection.js";
import { Dataset } from "./data.js";
import { Model } from "./model.js";
import { Trainer } from "./trainer.js";

/** How the SDK found the Python interpreter it launched. */
export interface PythonChoice {
  path: string;
  source: "option" | "env" | "venv";
}

/** Options of any call, in the SDK's own camelCase; wire specs travel in their own argument. */
export interface RequestOptions {
  /** Aborting sends `cancel`; the call then rejects with CancelledError. */
  signal?: AbortSignal;
  /** Milliseconds before the call rejects with TimeoutError (and is cancelled). */
  timeoutMs?: number;
  /** Check params, events and results with zod (default true). */
  validate?: boolean;
}

/** A handle and the worker generation that made it (see `Worker.generation`). */
export interface HandleRef {
  readonly handle: string;
  readonly generation: number;
}

/** Options of the low-level `request`: also the tensors to send and an event callback. */
export interface TypedCallOptions<M extends MethodName = MethodName> extends RequestOptions {
  /** Handles the call acts on; one from an earlier worker generation is refused with StaleHandleError. */
  handles?: readonly HandleRef[];
  /** Tensors sent as raw frames; do not mutate them until the call settles. */
  tensors?: Record<string, Tensor>;
  /** Called for each streamed event, already checked against its schema. */
  onEvent?: (event: EventOf<M>) => void;
}

function firstIssue(error: z.ZodError): { path: string; message: string; code: string } {
  const issue = error.issues[0];
  return { path: issue?.path.join(".") ?? "", message: issue?.message ?? "invalid", code: issue?.code ?? "invalid" };
}

/** Checks params with the method's zod schema; throws InvalidSpecError naming the field. */
export function checkParams<M extends MethodName>(method: M, params: unknown): z.output<(typeof METHODS)[M]["params"]> {
  const parsed = METHODS[method].params.safeParse(params);
  if (parsed.success) return parsed.data as never;
  const { path, message, code } = firstIssue(parsed.error);
  throw new InvalidSpecError("invalid_spec", `${method}: ${path || "(root)"}: ${message}`, {
    path,
    rule: code,
    issues: parsed.error.issues,
  });
}

/** Checks a worker's result with the method's zod schema; throws ProtocolError naming the field. */
function checkResult<M extends MethodName>(method: M, result: unknown): ResultOf<M> {
  const parsed = METHODS[method].result.safeParse(result);
  if (parsed.success) return parsed.data as ResultOf<M>;
  const { path, message, code } = firstIssue(parsed.error);
  throw new ProtocolError("protocol", `${method} result: ${path || "(root)"}: ${message}`, {
    path,
    rule: code,
    issues: parsed.error.issues,
  });
}

/** Types a raw event by its method's event table, or says why it does not fit. */
function checkEvent<M extends MethodName>(
  method: M,
  raw: WorkerEvent,
  validate: boolean,
): { event: EventOf<M> } | { error: ProtocolError } {
  const table = (METHOD_EVENTS as Record<string, Record<string, z.ZodType>>)[method];
  const schema = table?.[raw.event];
  if (!schema) {
    const known = Object.keys(table ?? {});
    return {
      error: new ProtocolError("protocol", `${method} streamed an undeclared event kind ${JSON.stringify(raw.event)}`, {
        event: raw.event,
        known,
      }),
    };
  }
  if (!validate) return { event: raw as EventOf<M> };
  const parsed = schema.safeParse(raw.data);
  if (parsed.success) return { event: { event: raw.event, data: parsed.data, tensors: raw.tensors } as EventOf<M> };
  const { path, message, code } = firstIssue(parsed.error);
  return {
    error: new ProtocolError("protocol", `${method} event ${raw.event}: ${path || "(root)"}: ${message}`, {
      event: raw.event,
      path,
      rule: code,
      issues: parsed.error.issues,
    }),
  };
}

/** A connected worker: typed methods over a signed connection. */
export class Worker {
  readonly #connection: Connection;
  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /** The signed session with the worker process serving now. */
  get connection(): Connection {
    return this.#connection;
  }

  /**
   * Which worker process serves: 0 for the first, one more after each supervised restart.
   * Handles remember the generation that made them; the objects of earlier ones are gone.
   */
  get generation(): number {
    return 0;
  }

  /** Whether a dead worker process is replaced by a new one (`spawnWorker` with `restart`). */
  get supervised(): boolean {
    return false;
  }

  /**
   * Resolves once a process of a later generation than `generation` serves. A worker that
   * is not supervised never restarts, so this rejects at once with the reason it is gone.
   */
  waitForRestart(generation: number, _signal?: AbortSignal): Promise<void> {
    void generation;
    return Promise.reject(
      this.connection.failure ??
        new WorkerClosedError("worker_closed", "this worker is not supervised, so it is never restarted"),
    );
  }

  /** Throws StaleHandleError when `ref` was made by an earlier process than the one serving now. */
  checkHandle(ref: HandleRef, method?: string): void {
    if (ref.generation === this.generation) return;
    const err = new StaleHandleError(
      "stale_handle",
      `${ref.handle} was made by worker generation ${ref.generation}, which has been replaced by generation ${this.generation} after a restart; its object is gone (resume from a checkpoint for a new handle)`,
      { handle: ref.handle, generation: ref.generation, current: this.generation },
    );
    if (method) err.method = method;
    throw err;
  }

  /**
   * Calls `method`, validating params, events and result with the wire schemas. An event
   * or result that breaks its schema cancels the call, which rejects with ProtocolError.
   */
  async request<M extends MethodName>(
    method: M,
    params: ParamsOf<M>,
    options: TypedCallOptions<M> = {},
  ): Promise<Reply<ResultOf<M>>> {
    const { validate = true, onEvent, signal, handles, ...call } = options;
    for (const ref of handles ?? []) this.checkHandle(ref, method);
    const sent = validate ? checkParams(method, params) : params;
    const broken = new AbortController();
    let failure: ProtocolError | undefined;
    const onRaw = (raw: WorkerEvent) => {
      if (failure) return;
      const checked = checkEvent(method, raw, validate);
      if ("error" in checked) {
        failure = checked.error;
        broken.abort(failure);
        return;
      }
      onEvent?.(checked.event);
    };
    try {
      const reply = await this.connection.call(method, sent as Record<string, unknown>, {
        ...call,
        signal: signal ? AbortSignal.any([signal, broken.signal]) : broken.signal,
        onEvent: onRaw,
      });
      const result = validate ? checkResult(method, reply.result) : (reply.result as ResultOf<M>);
      return { result, tensors: reply.tensors };
    } catch (err) {
      throw failure ?? err;
    }
  }

  /** Like `request`, as a CallStream: await it for the result, or iterate its typed events. */
  stream<M extends MethodName>(
    method: M,
    params: ParamsOf<M>,
    options: TypedCallOptions<M> = {},
  ): CallStream<ResultOf<M>, EventOf<M>> {
    return new CallStream<ResultOf<M>, EventOf<M>>((onEvent) =>
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
  async info(options?: RequestOptions): Promise<ResultOf<"info">> {
    return (await this.request("info", {}, options)).result;
  }

  /** Sends tensors and gets them back unchanged (a transport check). */
  async echo(tensors: Record<string, Tensor>, options: RequestOptions = {}): Promise<Record<string, Tensor>> {
    return (await this.request("echo", {}, { ...options, tensors })).tensors;
  }

  /** A cancellable long request that streams progress events (for tests and demos). */
  sleep(params: ParamsOf<"sleep">, options?: RequestOptions): CallStream<ResultOf<"sleep">, EventOf<"sleep">> {
    return this.stream("sleep", params, options);
  }

  /** Builds a model (dense or MoE) on the worker from a spec. */
  async createModel(spec: ModelSpec, options: RequestOptions & { device?: string } = {}): Promise<Model> {
    const { device, ...call } = options;
    return new Model(this, (await this.request("model.create", { spec, device }, call)).result);
  }

  /** Loads a checkpoint written by `Model.save` (path inside the worker's workspace). */
  async loadModel(path: string, options: RequestOptions & { device?: string } = {}): Promise<Model> {
    const { device, ...call } = options;
    return new Model(this, (await this.request("model.load", { path, device }, call)).result);
  }

  /** Builds a data set on the worker; `tensors` data sets name tensors passed in `options.tensors`. */
  async createDataset(
    spec: DataSpec,
    options: RequestOptions & { tensors?: Record<string, Tensor> } = {},
  ): Promise<Dataset> {
    return new Dataset(this, (await this.request("data.create", { spec }, options)).result);
  }

  /** A trainer for `model` on `data`'s train split (val split for epoch-end evaluation). */
  async createTrainer(model: Model, data: Dataset, spec: TrainerSpec, options?: RequestOptions): Promise<Trainer> {
    const params = { model: model.handle, data: data.handle, spec };
    return new Trainer(
      this,
      (await this.request("trainer.create", params, { ...options, handles: [model, data] })).result,
    );
  }

  /** Continues a trainer from its checkpoint, exactly where it stopped. */
  async resumeTrainer(
    path: string,
    options: RequestOptions & { model?: Model; data?: Dataset } = {},
  ): Promise<{ trainer: Trainer; model: Model }> {
    const { model, data, ...call } = options;
    const params = { path, model: model?.handle, data: data?.handle };
    const handles = [model, data].filter((h): h is Model | Dataset => h !== undefined);
    const trainer = new Trainer(this, (await this.request("trainer.resume", params, { ...call, handles })).result);
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
    options: RequestOptions = {},
  ): Promise<ResultOf<"attack"> & { xAdv: Tensor<"float32"> }> {
    const reply = await this.request(
      "attack",
      { model: model.handle, attack },
      { ...options, tensors: { x, y }, handles: [model] },
    );
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
    options: RequestOptions & { split?: "train" | "val" | "test" } = {},
  ): CallStream<EvaluationReport, EventOf<"evaluate">> {
    const { split, ...call } = options;
    if (data instanceof Dataset) {
      const handles = [model, data];
      return this.stream("evaluate", { model: model.handle, data: data.handle, split, spec }, { ...call, handles });
    }
    const tensors = { x: data.x, y: data.y };
    return this.stream("evaluate", { model: model.handle, spec }, { ...call, tensors, handles: [model] });
  }

  /** Objects held by the worker (models, data sets, trainers...). */
  async objects(kind?: string): Promise<ResultOf<"object.list">["objects"]> {
    return (await this.request("object.list", kind ? { kind } : {})).result.objects;
  }

  /** Frees an object held by the worker; false when the handle was unknown. */
  async deleteObject(handle: string | HandleRef): Promise<boolean> {
    const name = typeof handle === "string" ? handle : handle.handle;
    const handles = typeof handle === "string" ? [] : [handle];
    return (await this.request("object.delete", { handle: name }, { handles })).result.deleted;
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
