// SIGINT/SIGTERM: the first asks the run to stop at the next step boundary, a second SIGINT exits at once.
import { EXIT } from "./exit-codes.js";

/** An abort signal tied to SIGINT and SIGTERM while `dispose` has not been called. */
export function interruptSignal(log: (line: string) => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      if (name === "SIGINT") {
        process.stderr.write("advmoe: second SIGINT, stopping now without a checkpoint\n");
        process.exit(EXIT.interrupted);
      }
      return;
    }
    log(`advmoe: ${name}: stopping at the next step boundary (SIGINT again to stop at once)`);
    controller.abort(new Error(name));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
