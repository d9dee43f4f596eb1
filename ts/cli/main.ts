#!/usr/bin/env node
// The `advmoe` command line: train, evaluate, resume, describe, info, demo, schema.
import { z } from "zod";
import { SPECS } from "../schemas/registry.js";
import { EvaluateRunSpec, RunSpec } from "../schemas/run.js";
import { runDemo } from "./demo/run.js";
import { runDescribe } from "./describe.js";
import { EVALUATE_OPTIONS, runEvaluate } from "./evaluate.js";
import { CliError, describeError, EXIT, EXIT_CODES_HELP, exitCodeOf } from "./exit-codes.js";
import { runInfo } from "./info.js";
import {
  type CommandHelp,
  HELP_OPTION,
  type OptionTable,
  OUTPUT_OPTIONS,
  parseOptions,
  renderHelp,
  WORKER_OPTIONS,
} from "./options.js";
import { renderSchema, SCHEMA_NAMES } from "./schema.js";
import { runResume, runTrain } from "./train.js";

interface Command extends CommandHelp {
  positionals: number;
  run: (values: Record<string, unknown>, positionals: string[]) => Promise<number>;
}

const RESUME_OPTIONS = {
  spec: z
    .string()
    .min(1)
    .optional()
    .describe("The run's spec file: its evaluation runs after training, its name labels the reports."),
} satisfies OptionTable;

const COMMANDS: Record<string, Command> = {
  train: {
    usage: "advmoe train <run.json|run.yaml> [options]",
    summary:
      "Trains a model from a spec file (data, model, trainer and an optional evaluation), streaming typed events.",
    options: { ...OUTPUT_OPTIONS, ...WORKER_OPTIONS, ...HELP_OPTION },
    specs: { "spec file fields": RunSpec },
    positionals: 1,
    run: (v, [file]) => runTrain(file!, v as never),
  },
  evaluate: {
    usage: "advmoe evaluate <checkpoint> [--spec eval.json] [--attack pgd --eps 0.03 ...] [options]",
    summary:
      "Evaluates a model checkpoint (or a trainer checkpoint's model): SA, RA per attack, AA; --out adds a RobustBench-style result.",
    options: { ...EVALUATE_OPTIONS, ...OUTPUT_OPTIONS, ...WORKER_OPTIONS, ...HELP_OPTION },
    specs: { "spec file fields": EvaluateRunSpec },
    positionals: 1,
    run: (v, [checkpoint]) => runEvaluate(checkpoint!, v as never),
  },
  resume: {
    usage: "advmoe resume <trainer checkpoint> [--spec run.json] [options]",
    summary: "Continues a run from its trainer checkpoint, exactly where it stopped, to the end of its epochs.",
    options: { ...RESUME_OPTIONS, ...OUTPUT_OPTIONS, ...WORKER_OPTIONS, ...HELP_OPTION },
    positionals: 1,
    run: (v, [checkpoint]) => runResume(checkpoint!, v.spec as string | undefined, v as never),
  },
  describe: {
    usage: "advmoe describe <checkpoint> [options]",
    summary: "Prints what a model or trainer checkpoint holds: specs, parameter counts, MACs, training progress.",
    options: {
      json: z.boolean().default(false).describe("Print the description as JSON."),
      ...WORKER_OPTIONS,
      ...HELP_OPTION,
    },
    positionals: 1,
    run: (v, [checkpoint]) => runDescribe(checkpoint!, v as never),
  },
  info: {
    usage: "advmoe info [options]",
    summary: "Starts a local worker and prints its interpreter, versions and devices.",
    options: { python: WORKER_OPTIONS.python, ...HELP_OPTION },
    positionals: 0,
    run: async (v) => {
      await runInfo({ python: v.python as string | undefined });
      return EXIT.ok;
    },
  },
  demo: {
    usage: "advmoe demo [options]",
    summary:
      "The main job: dense, S-Dense, AT (MoE) and AdvMoE ResNet-18s trained adversarially on scikit-learn's digits, then a robustness report with charts.",
    options: {
      python: WORKER_OPTIONS.python,
      out: z.string().min(1).default("runs/demo").describe("Where the demo writes its report (default runs/demo)."),
      quick: z.boolean().default(false).describe("One epoch per model and a small test subset (for smoke tests)."),
      seeds: z.coerce
        .number()
        .int()
        .min(1)
        .default(1)
        .describe("Train every model with seeds 0..N-1 and report mean ± std (default 1)."),
      workers: z.coerce
        .number()
        .int()
        .min(1)
        .optional()
        .describe("Worker processes training side by side, one thread each (default: one per core)."),
      ...HELP_OPTION,
    },
    positionals: 0,
    run: async (v) => {
      await runDemo({
        python: v.python as string | undefined,
        out: v.out as string,
        quick: v.quick as boolean,
        seeds: v.seeds as number,
        workers: v.workers as number | undefined,
        command: ["advmoe", ...process.argv.slice(2)].join(" "),
      });
      return EXIT.ok;
    },
  },
  schema: {
    usage: `advmoe schema <${Object.keys(SPECS).join("|")}>`,
    summary: "Prints the JSON Schema of a spec, for editors (a run file may name it in `$schema`).",
    options: { ...HELP_OPTION },
    positionals: 1,
    run: async (_v, [name]) => {
      if (!SCHEMA_NAMES.includes(name!)) {
        throw new CliError(`advmoe schema: unknown spec ${JSON.stringify(name)}; known: ${SCHEMA_NAMES.join(", ")}`, 2);
      }
      process.stdout.write(renderSchema(name!));
      return EXIT.ok;
    },
  },
};

const USAGE = `usage: advmoe <command> [options]   (advmoe <command> --help for its options and spec fields)

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

${EXIT_CODES_HELP}`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    console.log(USAGE);
    return name ? EXIT.ok : EXIT.badInput;
  }
  const command = COMMANDS[name];
  if (!command) throw new CliError(`advmoe: unknown command ${JSON.stringify(name)}\n\n${USAGE}`, EXIT.badInput);
  const { values, positionals } = parseOptions(name, rest, command.options);
  if (values.help) {
    console.log(renderHelp(command));
    return EXIT.ok;
  }
  if (positionals.length !== command.positionals) {
    throw new CliError(
      `advmoe ${name}: expected ${command.positionals} argument(s), got ${positionals.length}\nusage: ${command.usage}`,
      EXIT.badInput,
    );
  }
  return command.run(values, positionals);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`advmoe: ${describeError(err)}\n`);
  process.exitCode = exitCodeOf(err);
}
