#!/usr/bin/env node
// The `advmoe` command line: `advmoe info`, `advmoe demo`.
import { parseArgs } from "node:util";
import { runDemo } from "./demo/run.js";
import { runInfo } from "./info.js";

const USAGE = `usage: advmoe <command> [options]

commands:
  info          start a local worker and print its versions and devices
  demo          the main job: AdvMoE training and a robustness report on digits

options:
  --python PATH   interpreter for the worker (default: $ADVMOE_PYTHON, then .venv)
  --out DIR       where the demo writes its report (default: runs/demo)
  --quick         a shorter demo (for smoke tests)
  --seeds N       train every model with seeds 0..N-1 and report mean ± std (default 1)
  --workers N     worker processes side by side (default: one per core)
  -h, --help      this text`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    python: { type: "string" },
    out: { type: "string", default: "runs/demo" },
    quick: { type: "boolean", default: false },
    seeds: { type: "string", default: "1" },
    workers: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

const command = positionals[0];
if (values.help || !command) {
  console.log(USAGE);
  process.exit(command || values.help ? 0 : 2);
}
switch (command) {
  case "info":
    await runInfo({ python: values.python });
    break;
  case "demo":
    await runDemo({
      python: values.python,
      out: values.out,
      quick: values.quick,
      seeds: positiveInt("--seeds", values.seeds),
      workers: values.workers === undefined ? undefined : positiveInt("--workers", values.workers),
      command: ["advmoe", ...process.argv.slice(2)].join(" "),
    });
    break;
  default:
    console.error(`advmoe: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    process.exit(2);
}

function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`advmoe: ${flag} must be an integer >= 1, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}
