// A model's description as an HTML table (and aligned text).
import type { ModelInfo } from "../client/model.js";
import { type Displayable, displayable, type MimeBundle } from "./bundle.js";
import { htmlFields, mega, textTable } from "./html.js";

function fields(info: ModelInfo): [string, string][] {
  const rows: [string, string][] = [
    ["handle", info.handle],
    ["architecture", info.arch],
    [
      "kind",
      info.is_moe ? `MoE, ${info.experts} experts of width ratio ${info.ratio}` : `dense, width ratio ${info.ratio}`,
    ],
  ];
  if (info.is_moe) {
    rows.push(
      ["router", `${info.router ?? "-"} (${info.routing_layers} routing decision(s) per sample)`],
      ["MoE layers", String(info.moe_layers)],
      ["execution", info.execution ?? "-"],
    );
  }
  rows.push(
    [
      "parameters",
      `${info.params.total.toLocaleString("en-US")} (router ${info.params.router.toLocaleString("en-US")})`,
    ],
    [
      "MACs per sample",
      `${mega(info.macs.total_active)} (active ${mega(info.macs.active)}, router ${mega(info.macs.router)})`,
    ],
    [
      "dense MACs",
      `${mega(info.macs.dense)} (${((100 * info.macs.total_active) / info.macs.dense).toFixed(0)}% of dense)`,
    ],
    ["device", info.device],
    ["mode", info.training ? "training" : "eval"],
  );
  return rows;
}

/** text/html and text/plain views of a model description. */
export function modelBundle(info: ModelInfo): MimeBundle {
  const rows = fields(info);
  return {
    "text/html": htmlFields(rows, `model ${info.handle}`),
    "text/plain": textTable(["model", info.handle], rows.slice(1)),
  };
}

/** A notebook renders this as the model's table. */
export function displayModel(info: ModelInfo): Displayable & { bundle: MimeBundle } {
  return displayable(modelBundle(info));
}
