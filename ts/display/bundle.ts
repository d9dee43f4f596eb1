// MIME bundles and the Jupyter display protocol, without importing anything kernel-specific.
import { JUPYTER_DISPLAY } from "./symbol.js";

export { JUPYTER_DISPLAY };

/** A Jupyter MIME bundle: MIME type → content (strings, or JSON for JSON types). */
export type MimeBundle = Record<string, unknown>;

/** Something a notebook renders from its MIME bundle. */
export interface Displayable {
  [JUPYTER_DISPLAY](): MimeBundle | Promise<MimeBundle>;
}

/** Wraps a bundle so that a notebook cell whose value it is renders it. */
export function displayable(bundle: MimeBundle): Displayable & { bundle: MimeBundle } {
  return { bundle, [JUPYTER_DISPLAY]: () => bundle };
}

export const VEGA_LITE_MIME = "application/vnd.vegalite.v5+json";
export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** Sends one iopub message (`display_data` or `update_display_data`) to the notebook. */
export type Publish = (
  msgType: "display_data" | "update_display_data",
  content: { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id: string } },
) => unknown;

interface JupyterGlobal {
  Deno?: { jupyter?: { broadcast?: (msgType: string, content: Record<string, unknown>) => Promise<void> } };
}

/**
 * The kernel's way to publish a display and update it in place: Deno's
 * `Deno.jupyter.broadcast` when this runs in a Deno Jupyter kernel, else undefined.
 */
export function kernelPublisher(scope: unknown = globalThis): Publish | undefined {
  let broadcast: ((msgType: string, content: Record<string, unknown>) => Promise<void>) | undefined;
  try {
    broadcast = (scope as JupyterGlobal).Deno?.jupyter?.broadcast;
  } catch {
    // Deno throws on `Deno.jupyter` outside a Jupyter kernel: a plain script has no display.
    return undefined;
  }
  if (typeof broadcast !== "function") return undefined;
  return (msgType, content) => broadcast(msgType, content);
}
