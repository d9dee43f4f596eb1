// Trainers and data sets as small HTML tables, for the handles that render themselves.
import type { DataInfo } from "../client/data.js";
import type { TrainerInfo } from "../client/trainer.js";
import type { MimeBundle } from "./bundle.js";
import { htmlFields, textTable } from "./html.js";

function fieldsBundle(title: string, rows: [string, string][]): MimeBundle {
  return { "text/html": htmlFields(rows, title), "text/plain": textTable([title, ""], rows) };
}

/** A trainer: method, phases, counters. */
export function trainerBundle(info: TrainerInfo): MimeBundle {
  return fieldsBundle(`trainer ${info.handle}`, [
    ["method", info.method],
    ["phases", info.phases.join(", ")],
    ["cycle", info.cycle.join(" → ")],
    ["next phase", info.next_phase],
    ["global step", String(info.global_step)],
    ["epochs completed", String(info.epochs_completed)],
    ["steps per epoch", String(info.steps_per_epoch)],
    ["paused", info.paused ? "yes" : "no"],
    ["model", info.model],
    ["data", info.data ?? "-"],
  ]);
}

/** A data set: kind, geometry, split sizes. */
export function datasetBundle(info: DataInfo): MimeBundle {
  return fieldsBundle(`data set ${info.handle}`, [
    ["kind", info.kind],
    ["classes", String(info.num_classes)],
    ["images", `${info.in_channels} × ${info.input_size} × ${info.input_size}`],
    ["train / val / test", `${info.train} / ${info.val} / ${info.test}`],
  ]);
}
