#!/usr/bin/env node
// The `advmoe` command line: `advmoe info`, `advmoe demo`.
import { parseArgs } from "node:util";
import { runDemo } from "./demo.js";
import { runInfo } from "./info.js";

const USAGE = `usage: advmoe <command> [options]

commands:
  info          start a local worker and print its versions and devices
  demo          the main job: AdvMoE training and a robustness report on digits

options:
  --python PATH   interpreter for the worker (default: $ADVMOE_PYTHON, then .venv)
  --out DIR       where the demo writes its report (default: runs/demo)
  --quick         a shorter demo (for smoke tests)
  -h, --help      this text`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    python: { type: "string" },
    out: { type: "string", default: "runs/demo" },
    quick: { type: "boolean", default: false },
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
    await runDemo({ python: values.python, out: values.out, quick: values.quick });
    break;
  default:
    console.error(`advmoe: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    process.exit(2);
}
