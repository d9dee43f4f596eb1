// A training run as one notebook display, updated in place as its events arrive.
import type { CallStream } from "../client/connection.js";
import type { TrainingEvent } from "../schemas/events.js";
import {
  type Displayable,
  JUPYTER_DISPLAY,
  kernelPublisher,
  type MimeBundle,
  type Publish,
  VEGA_LITE_MIME,
  VEGA_LITE_SCHEMA,
} from "./bundle.js";
import { escapeHtml, htmlFields, pct, textTable } from "./html.js";

/** One finished epoch, as the history chart plots it. */
export interface EpochPoint {
  epoch: number;
  loss: number;
  clean_acc: number | null;
  adv_acc: number | null;
  /** Validation SA and first RA, when the epoch ended with an evaluation. */
  val_sa: number | null;
  val_ra: number | null;
}

export interface TrainingDisplayOptions {
  /** Steps the run will take, for the progress bar and the ETA. */
  totalSteps?: number;
  /** How updates reach the notebook; default: the kernel's (Deno.jupyter.broadcast), if any. */
  publish?: Publish;
  /** The display's id; default: a fresh one. */
  displayId?: string;
  /** Fewest milliseconds between two in-place updates (default 250); the last state is always sent. */
  minIntervalMs?: number;
  /** Clock in ms (default Date.now); tests pass their own. */
  now?: () => number;
}

type Status = "running" | "paused" | "done" | "failed";

/** The live view of a run: step, epoch, loss, accuracies, expert load, ETA, per-epoch chart. */
export class TrainingDisplay implements Displayable {
  readonly displayId: string;
  readonly history: EpochPoint[] = [];
  status: Status = "running";
  step = 0;
  stepsSeen = 0;
  epoch = 0;
  phase = "";
  loss: number | null = null;
  cleanAcc: number | null = null;
  advAcc: number | null = null;
  expertLoad: number[] | null = null;
  lr: Record<string, number> = {};
  lastCheckpoint: string | null = null;
  warnings: string[] = [];
  readonly #options: TrainingDisplayOptions;
  readonly #publish?: Publish;
  readonly #now: () => number;
  #started?: number;
  #published = false;
  #lastPublish = Number.NEGATIVE_INFINITY;

  constructor(options: TrainingDisplayOptions = {}) {
    this.#options = options;
    this.#publish = options.publish ?? kernelPublisher();
    this.#now = options.now ?? Date.now;
    this.displayId = options.displayId ?? `advmoe-training-${globalThis.crypto.randomUUID()}`;
  }

  /** Seconds left at the pace so far; null before the second step or without `totalSteps`. */
  get etaSeconds(): number | null {
    const total = this.#options.totalSteps;
    if (!total || this.#started === undefined || this.stepsSeen < 2) return null;
    const perStep = (this.#now() - this.#started) / (this.stepsSeen - 1) / 1000;
    return Math.max(0, total - this.stepsSeen) * perStep;
  }

  /** Takes one event into the view and, at most every `minIntervalMs`, updates the display. */
  update(event: TrainingEvent): void {
    switch (event.event) {
      case "step": {
        const m = event.data;
        this.#started ??= this.#now();
        this.stepsSeen++;
        this.step = m.step;
        this.epoch = m.epoch;
        this.phase = m.phase;
        this.loss = m.loss;
        this.cleanAcc = m.clean_acc;
        this.advAcc = m.adv_acc;
        this.expertLoad = m.expert_load ?? this.expertLoad;
        this.lr = m.lr;
        break;
      }
      case "epoch": {
        const e = event.data;
        const first = e.eval?.attacks[0];
        this.history.push({
          epoch: e.epoch,
          loss: e.loss,
          clean_acc: e.clean_acc,
          adv_acc: e.adv_acc,
          val_sa: e.eval?.summary.sa ?? null,
          val_ra: first?.robust_accuracy ?? null,
        });
        break;
      }
      case "checkpoint":
        this.lastCheckpoint = event.data.path;
        break;
      case "warning":
        this.warnings.push(`${event.data.code}: ${event.data.message}`);
        break;
      case "paused":
        this.status = "paused";
        break;
      case "resumed":
        this.status = "running";
        break;
      default:
        return; // eval progress and the eval report show up in the epoch's summary
    }
    this.#maybePublish(false);
  }

  /** Follows a run to its end, updating the display; resolves with the run's result. */
  async watch<R>(run: CallStream<R, TrainingEvent>): Promise<R> {
    this.#maybePublish(true);
    try {
      for await (const event of run) this.update(event);
      const result = await run;
      this.status = "done";
      return result;
    } catch (err) {
      this.status = "failed";
      this.warnings.push(err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      this.#maybePublish(true);
    }
  }

  /** The view now: an HTML summary with a progress bar, the history chart, and plain text. */
  bundle(): MimeBundle {
    const total = this.#options.totalSteps;
    const eta = this.etaSeconds;
    const fields: [string, string][] = [
      ["status", this.status],
      ["step", total ? `${this.stepsSeen} / ${total} (global ${this.step})` : String(this.step)],
      ["epoch", String(this.epoch)],
      ["phase", this.phase || "-"],
      ["loss", this.loss === null ? "-" : this.loss.toFixed(4)],
      ["train accuracy", `clean ${pct(this.cleanAcc)}, adversarial ${pct(this.advAcc)}`],
      ["expert load", this.expertLoad ? this.expertLoad.map((s) => pct(s)).join(" / ") : "-"],
      [
        "learning rate",
        Object.entries(this.lr)
          .map(([k, v]) => `${k} ${v.toPrecision(3)}`)
          .join(", ") || "-",
      ],
      ["ETA", eta === null ? "-" : `${Math.round(eta)} s`],
    ];
    if (this.lastCheckpoint) fields.push(["checkpoint", this.lastCheckpoint]);
    const bar = total ? `<progress value="${this.stepsSeen}" max="${total}"></progress>` : "";
    const warnings = this.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("");
    return {
      "text/html":
        bar + htmlFields(fields, "training") + (warnings ? `<ul class="advmoe-warnings">${warnings}</ul>` : ""),
      [VEGA_LITE_MIME]: this.historyChart(),
      "text/plain": textTable(["training", ""], fields),
    };
  }

  /** Vega-Lite v5: per-epoch loss, and train/validation accuracies. */
  historyChart(): Record<string, unknown> {
    const accuracy: { epoch: number; metric: string; value: number }[] = [];
    for (const p of this.history) {
      const add = (metric: string, value: number | null) => {
        if (value !== null) accuracy.push({ epoch: p.epoch, metric, value });
      };
      add("train clean", p.clean_acc);
      add("train adversarial", p.adv_acc);
      add("val SA", p.val_sa);
      add("val RA", p.val_ra);
    }
    const epochAxis = { field: "epoch", type: "quantitative", axis: { tickMinStep: 1 } };
    return {
      $schema: VEGA_LITE_SCHEMA,
      hconcat: [
        {
          title: "Loss per epoch",
          data: { values: this.history.map((p) => ({ epoch: p.epoch, loss: p.loss })) },
          mark: { type: "line", point: true },
          encoding: { x: epochAxis, y: { field: "loss", type: "quantitative" } },
        },
        {
          title: "Accuracy per epoch",
          data: { values: accuracy },
          mark: { type: "line", point: true },
          encoding: {
            x: epochAxis,
            y: {
              field: "value",
              type: "quantitative",
              scale: { domain: [0, 1] },
              axis: { format: "%" },
              title: "accuracy",
            },
            color: { field: "metric", type: "nominal" },
          },
        },
      ],
    };
  }

  /** A snapshot as a cell's value; live updates go to the display `watch` opened. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return this.bundle();
  }

  #maybePublish(force: boolean): void {
    if (!this.#publish) return;
    const now = this.#now();
    if (!force && now - this.#lastPublish < (this.#options.minIntervalMs ?? 250)) return;
    this.#lastPublish = now;
    const type = this.#published ? "update_display_data" : "display_data";
    this.#published = true;
    const content = { data: this.bundle(), metadata: {}, transient: { display_id: this.displayId } };
    // A display that fails to update must not stop the run it shows.
    Promise.resolve(this.#publish(type, content)).catch(() => undefined);
  }
}

/**
 * Shows `run` as one display updated in place and resolves with its result. `steps`
 * (e.g. `trainer.info.steps_per_epoch * epochs`) gives the progress bar and the ETA.
 */
export function watchTraining<R>(
  run: CallStream<R, TrainingEvent>,
  options: TrainingDisplayOptions & { steps?: number } = {},
): Promise<R> & { display: TrainingDisplay } {
  const display = new TrainingDisplay({ totalSteps: options.steps, ...options });
  return Object.assign(display.watch(run), { display });
}
