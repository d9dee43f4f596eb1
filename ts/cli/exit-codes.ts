// Exit codes of the command line, and which error ends a command with which one.
import {
  AdvmoeError,
  BadCheckpointError,
  CancelledError,
  ForbiddenPathError,
  InvalidSpecError,
  LaunchError,
  NonFiniteError,
  NotFoundError,
  WorkerDiedError,
} from "../protocol/errors.js";

/** The documented exit codes; a pipeline branches on these. */
export const EXIT = {
  ok: 0,
  failed: 1,
  badInput: 2,
  workerDied: 3,
  nonFinite: 4,
  interrupted: 130,
} as const;

/** The table `--help` and the README print. */
export const EXIT_CODES_HELP = `exit codes:
  0    success
  1    any other failure
  2    bad spec file or arguments (the message names the file, the field path and the rule)
  3    the worker died (its last stderr lines are printed)
  4    training refused a non-finite step (NaN/inf loss or gradients)
  130  interrupted by SIGINT/SIGTERM (a checkpoint is written at the next step boundary)`;

/** An error the command line reports itself: a message and the exit code it ends with. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** The exit code an error ends a command with. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (
    err instanceof InvalidSpecError ||
    err instanceof ForbiddenPathError ||
    err instanceof NotFoundError ||
    err instanceof BadCheckpointError
  ) {
    return EXIT.badInput;
  }
  if (err instanceof WorkerDiedError || err instanceof LaunchError) return EXIT.workerDied;
  if (err instanceof NonFiniteError) return EXIT.nonFinite;
  if (err instanceof CancelledError) return EXIT.interrupted;
  return EXIT.failed;
}

/** The message printed for an error, with the worker's stderr tail when it died. */
export function describeError(err: unknown): string {
  if (err instanceof WorkerDiedError) {
    const tail = err.stderrTail;
    const first = err.message.split("\n")[0];
    return tail.length ? `${first}\nworker stderr (last ${tail.length} lines):\n${tail.join("\n")}` : `${first}`;
  }
  if (err instanceof InvalidSpecError) {
    return `${err.message}${err.rule && !err.message.includes(err.rule) ? ` (rule: ${err.rule})` : ""}`;
  }
  if (err instanceof AdvmoeError || err instanceof CliError) return err.message;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
