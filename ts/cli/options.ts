// Command-line options as zod schemas: parsed, checked and rendered into --help from one table.
import { parseArgs } from "node:util";
import { z } from "zod";
import { CliError, EXIT, EXIT_CODES_HELP } from "./exit-codes.js";

/** Flag name (without --) to its schema; `.describe()` is the help text, `.meta({ value })` the placeholder. */
export type OptionTable = Record<string, z.ZodType>;

/** How a command is called and documented. */
export interface CommandHelp {
  usage: string;
  summary: string;
  options: OptionTable;
  /** Spec-file schemas whose fields the help lists, by title. */
  specs?: Record<string, z.ZodType>;
}

/** Where the worker runs: shared by every command that needs one. */
export const WORKER_OPTIONS = {
  python: z
    .string()
    .min(1)
    .optional()
    .describe("Interpreter that runs a local worker (default: $ADVMOE_PYTHON, then the project's .venv)."),
  device: z
    .enum(["cpu", "cuda", "auto"])
    .default("auto")
    .describe("torch device of a local worker: cpu, cuda, or auto = cuda when available (default auto)."),
  threads: z.coerce.number().int().min(1).optional().describe("torch intra-op threads of a local worker."),
  workspace: z
    .string()
    .min(1)
    .optional()
    .describe("Workspace of a local worker: checkpoint, data and log paths must lie inside it (default: cwd)."),
  connect: z
    .string()
    .regex(/^(tcp|ipc):\/\/.+/, "expected tcp://host:port or ipc://path")
    .optional()
    .describe("Use a worker already running at this endpoint (e.g. tcp://host:5555, the Docker image)."),
  "key-file": z
    .string()
    .min(1)
    .optional()
    .describe("File holding the hex signing key of the --connect worker (default: $ADVMOE_KEY)."),
  "nproc-per-node": z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe("Run a local worker as this many ranks under torchrun: one per GPU, or gloo processes on the CPU."),
  restarts: z.coerce
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "Restart a local worker that dies up to this many times; a run then resumes from its last automatic checkpoint (needs the trainer's checkpoint_dir) (default 0).",
    ),
} satisfies OptionTable;

/** What a long-running command writes. */
export const OUTPUT_OPTIONS = {
  jsonl: z
    .string()
    .min(1)
    .optional()
    .describe("Write every typed event as one JSON line to this file, or '-' for stdout; flushed per line."),
  out: z
    .string()
    .min(1)
    .optional()
    .describe("Folder for the final report (report.json, report.md) and the model checkpoint (model.pt)."),
  quiet: z.boolean().default(false).describe("No progress output; errors only."),
} satisfies OptionTable;

export const HELP_OPTION = { help: z.boolean().default(false).describe("Show this help.") } satisfies OptionTable;

type Def = { type: string; innerType?: z.ZodType; element?: z.ZodType };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The schema under optional/default/nullable wrappers. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let d = defOf(s); ["optional", "default", "nullable", "prefault", "pipe"].includes(d.type); d = defOf(s)) {
    if (!d.innerType) break;
    s = d.innerType;
  }
  return s;
}

const kindOf = (schema: z.ZodType) => defOf(unwrap(schema)).type;

/** Parses argv against `table`; unknown flags and bad values exit 2 naming the flag and the rule. */
export function parseOptions<T extends OptionTable>(
  command: string,
  argv: string[],
  table: T,
): { values: { [K in keyof T]: z.output<T[K]> }; positionals: string[] } {
  const config: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, schema] of Object.entries(table)) {
    const kind = kindOf(schema);
    config[name] = kind === "boolean" ? { type: "boolean" } : { type: "string", multiple: kind === "array" };
  }
  if (config.help) config.help.short = "h";
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`advmoe ${command}: ${(err as Error).message} (see advmoe ${command} --help)`, EXIT.badInput);
  }
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(table)) {
    const result = schema.safeParse(parsed.values[name]);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new CliError(
        `advmoe ${command}: --${name}: ${issue?.message} (rule: ${issue?.code}; got ${JSON.stringify(parsed.values[name])})`,
        EXIT.badInput,
      );
    }
    values[name] = result.data;
  }
  return { values: values as never, positionals: parsed.positionals };
}

function placeholder(schema: z.ZodType): string {
  const inner = unwrap(schema);
  const kind = defOf(inner).type;
  if (kind === "boolean") return "";
  if (kind === "enum") return ` ${(inner as z.ZodEnum).options.join("|")}`;
  if (kind === "number") return " N";
  return " VALUE";
}

/** `name  description` lines for the fields of an object schema, nested objects one level down. */
export function specFieldLines(schema: z.ZodType, prefix = "", depth = 0): string[] {
  const inner = unwrap(schema);
  if (defOf(inner).type !== "object") return [];
  const lines: string[] = [];
  for (const [name, field] of Object.entries((inner as z.ZodObject).shape as Record<string, z.ZodType>)) {
    const path = `${prefix}${name}`;
    lines.push(`  ${path.padEnd(28)} ${field.description ?? ""}`.trimEnd());
    if (depth < 1) lines.push(...specFieldLines(field, `${path}.`, depth + 1));
  }
  return lines;
}

/** The --help text of a command: usage, options, spec-file fields and exit codes, from the schemas. */
export function renderHelp(help: CommandHelp): string {
  const parts = [`usage: ${help.usage}`, "", help.summary, "", "options:"];
  for (const [name, schema] of Object.entries(help.options)) {
    const flag = `--${name}${placeholder(schema)}`;
    parts.push(`  ${flag.padEnd(28)} ${schema.description ?? ""}`.trimEnd());
  }
  for (const [title, schema] of Object.entries(help.specs ?? {})) {
    parts.push("", `${title}:`, ...specFieldLines(schema));
  }
  parts.push("", EXIT_CODES_HELP);
  return parts.join("\n");
}
