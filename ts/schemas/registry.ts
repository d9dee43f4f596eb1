// The wire's single source of truth: every method's params/result and every named spec.
import type { z } from "zod";
import { AttackRequestSpec, AttackSpec } from "./attack.js";
import {
  DataCreateParams,
  DataDescription,
  DataHandleParams,
  DataSpec,
  DataTakeParams,
  DataTakeResult,
} from "./data.js";
import { AttackCallResult, AttackParams, EvaluateParams, EvaluationReport, EvaluationSpec } from "./evaluation.js";
import {
  ModelConfigureParams,
  ModelCreateParams,
  ModelDescription,
  ModelHandleParams,
  ModelLoadParams,
  ModelPredictParams,
  ModelPredictResult,
  ModelSaveParams,
  ModelSaveResult,
  ModelSpec,
} from "./model.js";
import { EvaluateRunSpec, RunSpec } from "./run.js";
import {
  StepMetrics,
  TrainerCreateParams,
  TrainerDescription,
  TrainerHandleParams,
  TrainerResumeParams,
  TrainerRunParams,
  TrainerRunResult,
  TrainerSaveParams,
  TrainerSaveResult,
  TrainerSetParams,
  TrainerSpec,
  TrainerStepParams,
} from "./trainer.js";
import {
  EchoParams,
  EchoResult,
  InfoParams,
  InfoResult,
  ObjectDeleteResult,
  ObjectDescribeResult,
  ObjectHandleParams,
  ObjectListParams,
  ObjectListResult,
  ShutdownParams,
  ShutdownResult,
  SleepParams,
  SleepResult,
  TransferSinkParams,
  TransferSinkResult,
  TransferSourceParams,
  TransferSourceResult,
} from "./worker.js";

/** A method's request params and reply result. */
export interface MethodSchema<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  params: P;
  result: R;
}

/** Every method the worker serves; `schemas/methods/*.json` is generated from this. */
export const METHODS = {
  info: { params: InfoParams, result: InfoResult },
  echo: { params: EchoParams, result: EchoResult },
  sleep: { params: SleepParams, result: SleepResult },
  shutdown: { params: ShutdownParams, result: ShutdownResult },
  "object.list": { params: ObjectListParams, result: ObjectListResult },
  "object.describe": { params: ObjectHandleParams, result: ObjectDescribeResult },
  "object.delete": { params: ObjectHandleParams, result: ObjectDeleteResult },
  "model.create": { params: ModelCreateParams, result: ModelDescription },
  "model.describe": { params: ModelHandleParams, result: ModelDescription },
  "model.configure": { params: ModelConfigureParams, result: ModelDescription },
  "model.predict": { params: ModelPredictParams, result: ModelPredictResult },
  "model.save": { params: ModelSaveParams, result: ModelSaveResult },
  "model.load": { params: ModelLoadParams, result: ModelDescription },
  "data.create": { params: DataCreateParams, result: DataDescription },
  "data.describe": { params: DataHandleParams, result: DataDescription },
  "data.take": { params: DataTakeParams, result: DataTakeResult },
  attack: { params: AttackParams, result: AttackCallResult },
  evaluate: { params: EvaluateParams, result: EvaluationReport },
  "trainer.create": { params: TrainerCreateParams, result: TrainerDescription },
  "trainer.describe": { params: TrainerHandleParams, result: TrainerDescription },
  "trainer.step": { params: TrainerStepParams, result: StepMetrics },
  "trainer.epoch": { params: TrainerHandleParams, result: TrainerRunResult },
  "trainer.run": { params: TrainerRunParams, result: TrainerRunResult },
  "trainer.set": { params: TrainerSetParams, result: TrainerDescription },
  "trainer.pause": { params: TrainerHandleParams, result: TrainerDescription },
  "trainer.continue": { params: TrainerHandleParams, result: TrainerDescription },
  "trainer.save": { params: TrainerSaveParams, result: TrainerSaveResult },
  "trainer.resume": { params: TrainerResumeParams, result: TrainerDescription },
  "transfer.sink": { params: TransferSinkParams, result: TransferSinkResult },
  "transfer.source": { params: TransferSourceParams, result: TransferSourceResult },
} as const satisfies Record<string, MethodSchema>;

export type MethodName = keyof typeof METHODS;
export type ParamsOf<M extends MethodName> = z.input<(typeof METHODS)[M]["params"]>;
export type ResultOf<M extends MethodName> = z.output<(typeof METHODS)[M]["result"]>;

/** Named specs that travel inside params; `schemas/specs/*.json` is generated from this. */
export const SPECS = {
  model: ModelSpec,
  data: DataSpec,
  trainer: TrainerSpec,
  attack: AttackSpec,
  attack_request: AttackRequestSpec,
  evaluation: EvaluationSpec,
  run: RunSpec,
  evaluate_run: EvaluateRunSpec,
} as const satisfies Record<string, z.ZodType>;
