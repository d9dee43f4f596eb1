// Events a request streams before its reply: one zod schema per kind, and which method streams which.
import { z } from "zod";
import type { Tensor } from "../protocol/tensor.js";
import { EvaluationReport } from "./evaluation.js";
import { EpochSummary, StepMetrics } from "./trainer.js";

const Fraction = z.number().min(0).max(1);

/**
 * `progress` of `evaluate` (and of a trainer's epoch-end evaluation): after every batch.
 * Fields a newer worker adds are accepted and dropped, so the type keeps no index
 * signature and a misspelt field (`samples_done`) stays a compile error.
 */
export const EvaluationProgress = z
  .object({
    stage: z.literal("evaluate"),
    batch: z.int().min(0).describe("Index of the batch just evaluated."),
    samples: z.int().min(0).describe("Samples evaluated so far."),
    sa: Fraction.nullable().describe("Clean accuracy so far."),
    ra: z.record(z.string(), Fraction.nullable()).describe("Robust accuracy so far, per attack label."),
    ra_worst: Fraction.nullable()
      .optional()
      .describe("Accuracy so far under the per-sample worst case of all attacks; null without attacks."),
    aa: Fraction.nullable().describe("AutoAttack accuracy so far; null when not run."),
  })
  .strip();

/** `progress` of `sleep`: the share of the wait done. */
export const SleepProgress = z
  .object({
    done: Fraction.describe("Share of the wait done."),
    tick: z.int().min(1).describe("Ticks so far."),
  })
  .strict();

/** A warning as data: a stable `code`, a message, and fields that depend on the code. */
export const WarningEvent = z
  .object({
    code: z
      .string()
      .min(1)
      .describe("Stable warning code, e.g. 'routing_collapse', 'non_finite_scores', 'amp_ignored'."),
    message: z.string(),
  })
  .catchall(z.unknown());

/** An automatic checkpoint was written. */
export const CheckpointEvent = z
  .object({
    path: z.string().describe("Where, on the worker."),
    global_step: z.int().min(0),
    epochs_completed: z.int().min(0),
  })
  .strict();

/** A run held between steps by `trainer.pause`, or let go on by `trainer.continue`. */
export const PauseEvent = z.object({ global_step: z.int().min(0) }).strict();

/** The events a training call (`trainer.step`, `trainer.epoch`, `trainer.run`) streams. */
const TRAINING_EVENTS = {
  step: StepMetrics,
  epoch: EpochSummary,
  eval: EvaluationReport,
  progress: EvaluationProgress,
  checkpoint: CheckpointEvent,
  warning: WarningEvent,
  paused: PauseEvent,
  resumed: PauseEvent,
} as const;

/** Per method, the events it may stream and the schema of each one's data. */
export const METHOD_EVENTS = {
  sleep: { progress: SleepProgress },
  evaluate: { progress: EvaluationProgress, warning: WarningEvent },
  "model.predict": { warning: WarningEvent },
  "trainer.step": TRAINING_EVENTS,
  "trainer.epoch": TRAINING_EVENTS,
  "trainer.run": TRAINING_EVENTS,
} as const satisfies Record<string, Record<string, z.ZodType>>;

/** Every event kind, for `schemas/events/*.json`; `progress` is either shape. */
export const EVENTS = {
  ...TRAINING_EVENTS,
  progress: z.union([EvaluationProgress, SleepProgress]),
} as const satisfies Record<string, z.ZodType>;

type EventTable = Record<string, z.ZodType>;
type TensorMap = Record<string, Tensor>;

/** One typed event: `event` names the kind and fixes the type of `data`. */
export type EventFrom<T extends EventTable> = {
  [K in keyof T & string]: { event: K; data: z.output<T[K]>; tensors: TensorMap };
}[keyof T & string];

/** Methods that stream events. */
export type StreamingMethod = keyof typeof METHOD_EVENTS;

/** The events `method` streams, as a union discriminated by `event`. */
export type EventOf<M extends string> = M extends StreamingMethod ? EventFrom<(typeof METHOD_EVENTS)[M]> : never;

/** Any event the worker streams. */
export type AnyEvent = EventFrom<typeof EVENTS>;

/** The events of a training call. */
export type TrainingEvent = EventFrom<typeof TRAINING_EVENTS>;

/** The events of an evaluation. */
export type EvaluationEvent = EventOf<"evaluate">;

export type StepEvent = Extract<TrainingEvent, { event: "step" }>;
export type EpochEvent = Extract<TrainingEvent, { event: "epoch" }>;

/** A supervised worker replaced its dead process (`spawnWorker` with `restart`); the new one serves. */
export const RestartEvent = z
  .object({
    attempt: z.int().min(1).describe("Restarts so far, this one included."),
    restarts_left: z.int().min(0).describe("Restarts the budget still allows."),
    generation: z.int().min(1).describe("Generation of the new process; handles of earlier ones are stale."),
    exit_code: z.int().nullable().describe("Exit code of the process that died; null when a signal ended it."),
    signal: z.string().nullable().describe("Signal that ended it (e.g. 'SIGKILL'); null when it exited."),
    pid: z.int().describe("Process id of the new worker."),
    endpoint: z.string().describe("Endpoint the new worker serves."),
    waited_ms: z.number().min(0).describe("Back-off waited before the respawn, ms."),
  })
  .strict();

/** A supervised worker died with its restart budget spent, or could not be started again; it is gone. */
export const GaveUpEvent = z
  .object({
    restarts: z.int().min(0).describe("Restarts made before giving up."),
    max_restarts: z.int().min(0).describe("The budget."),
    exit_code: z.int().nullable().describe("Exit code of the last process; null when a signal ended it."),
    signal: z.string().nullable().describe("Signal that ended the last process; null when it exited."),
    reason: z.string().describe("Why, in words."),
  })
  .strict();

/** Events of a supervised worker itself (not of a request): its restarts, and the end of them. */
export const SUPERVISOR_EVENTS = { restart: RestartEvent, gave_up: GaveUpEvent } as const satisfies Record<
  string,
  z.ZodType
>;

/** The data of a supervised worker's event of kind `K`. */
export type SupervisorEventData<K extends keyof typeof SUPERVISOR_EVENTS> = z.output<(typeof SUPERVISOR_EVENTS)[K]>;

/** One event of a supervised worker, discriminated by `event`. */
export type SupervisorEvent = {
  [K in keyof typeof SUPERVISOR_EVENTS]: { event: K; data: z.output<(typeof SUPERVISOR_EVENTS)[K]> };
}[keyof typeof SUPERVISOR_EVENTS];
