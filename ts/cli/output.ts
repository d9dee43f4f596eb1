// What a command shows while it runs: JSONL events, a progress bar on a TTY, one line per epoch otherwise.

import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import cliProgress from "cli-progress";
import type { AnyEvent } from "../schemas/events.js";
import { toJson } from "./json.js";

export interface OutputFlags {
  jsonl?: string;
  quiet: boolean;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null | undefined, digits = 4) => (x === null || x === undefined ? "-" : x.toFixed(digits));
const load = (x: readonly number[] | null | undefined) => (x ? x.map((v) => v.toFixed(2)).join("/") : "-");

/** Writes each event as one JSON line, synchronously so a crash never loses a line already reported. */
class JsonlWriter {
  readonly #fd: number;
  readonly #owned: boolean;
  constructor(target: string) {
    if (target === "-") {
      this.#fd = 1;
      this.#owned = false;
    } else {
      mkdirSync(dirname(target), { recursive: true });
      this.#fd = openSync(target, "w");
      this.#owned = true;
    }
  }
  write(line: object): void {
    writeSync(this.#fd, `${toJson(line)}\n`);
  }
  close(): void {
    if (this.#owned) closeSync(this.#fd);
  }
}

/** Fans one event stream out to the JSONL file, the progress bar and the log lines. */
export class Reporter {
  readonly #jsonl?: JsonlWriter;
  readonly #quiet: boolean;
  readonly #tty: boolean;
  readonly #stream: NodeJS.WritableStream;
  #bar?: cliProgress.SingleBar;
  #stepsPerEpoch = 0;
  #epochs = 0;
  #epochStep = 0;

  constructor(flags: OutputFlags, stream: NodeJS.WriteStream = process.stderr) {
    this.#jsonl = flags.jsonl ? new JsonlWriter(flags.jsonl) : undefined;
    this.#quiet = flags.quiet;
    this.#tty = Boolean(stream.isTTY);
    this.#stream = stream;
  }

  /** A line for a person (stderr), unless --quiet. */
  log(line: string): void {
    if (this.#quiet) return;
    this.#bar?.stop();
    this.#bar = undefined;
    this.#stream.write(`${line}\n`);
  }

  /** Sets the bar's scale: steps per epoch and the epochs of the run. */
  startTraining(stepsPerEpoch: number, epochs: number, epochsCompleted = 0): void {
    this.#stepsPerEpoch = stepsPerEpoch;
    this.#epochs = epochs;
    this.#epochStep = 0;
    this.#epochLabel = epochsCompleted + 1;
  }
  #epochLabel = 1;

  /** One typed event from the worker, as `{event, data}`; `source` names the call that streamed it. */
  event(source: "train" | "evaluate", event: AnyEvent): void {
    this.#jsonl?.write({ source, event: event.event, data: event.data });
    if (this.#quiet) return;
    switch (event.event) {
      case "step":
        this.#step(event.data);
        break;
      case "epoch": {
        const e = event.data;
        this.#epochStep = 0;
        this.#epochLabel = e.epochs_completed + 1;
        if (!this.#tty || this.#bar) {
          this.log(
            `epoch ${e.epochs_completed}/${this.#epochs}: loss ${num(e.loss)}, clean ${pct(e.clean_acc)}, adv ${pct(e.adv_acc)}, load ${load(e.expert_load)}, ${e.time_s.toFixed(1)} s`,
          );
        }
        break;
      }
      case "eval": {
        const s = event.data.summary;
        const ra = Object.entries(s.ra).map(([k, v]) => `${k} ${pct(v)}`);
        this.log(`evaluation: SA ${pct(s.sa)}${ra.length ? `, RA ${ra.join(", ")}` : ""}`);
        break;
      }
      case "checkpoint":
        this.log(`checkpoint ${event.data.path} (step ${event.data.global_step})`);
        break;
      case "warning":
        this.log(`warning ${event.data.code}: ${event.data.message}`);
        break;
      default:
        break;
    }
  }

  #step(m: Extract<AnyEvent, { event: "step" }>["data"]): void {
    this.#epochStep += 1;
    if (!this.#tty) return;
    const payload = {
      epoch: `${this.#epochLabel}/${this.#epochs}`,
      loss: num(m.loss),
      clean: pct(m.clean_acc),
      adv: pct(m.adv_acc),
      load: load(m.expert_load),
    };
    if (!this.#bar) {
      this.#bar = new cliProgress.SingleBar(
        {
          format:
            "epoch {epoch} |{bar}| {value}/{total} steps | ETA {eta_formatted} | loss {loss} | clean {clean} adv {adv} | load {load}",
          hideCursor: true,
          stream: this.#stream,
          clearOnComplete: false,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(Math.max(this.#stepsPerEpoch, 1), 0, payload);
    }
    this.#bar.update(Math.min(this.#epochStep, this.#stepsPerEpoch), payload);
  }

  close(): void {
    this.#bar?.stop();
    this.#bar = undefined;
    this.#jsonl?.close();
  }
}
