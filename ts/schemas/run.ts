// Spec files of the command line: a whole training run, or an evaluation of a checkpoint.
import { z } from "zod";
import { DataSpec } from "./data.js";
import { EvaluationSpec } from "./evaluation.js";
import { ModelSpec } from "./model.js";
import { TrainerSpec } from "./trainer.js";

const Split = z
  .enum(["train", "val", "test"])
  .default("test")
  .describe("Data split the final evaluation runs on (default 'test').");

/** `advmoe train <file>`: the data, the model, how to train it and how to evaluate it after. */
export const RunSpec = z
  .object({
    $schema: z
      .string()
      .optional()
      .describe("JSON Schema of this file for editors (e.g. the output of `advmoe schema run`); ignored."),
    name: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Model id for reports and the RobustBench-style result (default null = the file's name)."),
    data: DataSpec.describe("The data set: the trainer trains on its train split."),
    model: ModelSpec.describe("The model to build (dense or MoE)."),
    trainer: TrainerSpec.describe("How to train the model."),
    evaluation: EvaluationSpec.nullable()
      .default(null)
      .describe("The robustness evaluation after training; null = none (default null)."),
    split: Split,
  })
  .strict();

/** `advmoe evaluate <checkpoint> --spec <file>`: which data and which attacks. */
export const EvaluateRunSpec = z
  .object({
    $schema: z
      .string()
      .optional()
      .describe("JSON Schema of this file for editors (e.g. the output of `advmoe schema evaluate_run`); ignored."),
    name: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Model id for reports and the RobustBench-style result (default null = the checkpoint's name)."),
    data: DataSpec.nullable()
      .default(null)
      .describe("The data set; null = the one a trainer checkpoint carries (default null)."),
    evaluation: EvaluationSpec.prefault({}).describe("The attacks and settings of the evaluation (default: SA only)."),
    split: Split,
  })
  .strict();

export type RunSpec = z.input<typeof RunSpec>;
export type ResolvedRunSpec = z.output<typeof RunSpec>;
export type EvaluateRunSpec = z.input<typeof EvaluateRunSpec>;
