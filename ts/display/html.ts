// Small HTML builders for the display bundles; every value is escaped.

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** A table with a header row; cells are text, escaped. */
export function htmlTable(header: readonly string[], rows: readonly (readonly unknown[])[], caption?: string): string {
  const head = `<tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("");
  const cap = caption ? `<caption>${escapeHtml(caption)}</caption>` : "";
  return `<table class="advmoe">${cap}<thead>${head}</thead><tbody>${body}</tbody></table>`;
}

/** A two-column key/value table. */
export function htmlFields(fields: readonly (readonly [string, unknown])[], caption?: string): string {
  return htmlTable(["", ""], fields, caption).replace(/<thead>.*?<\/thead>/, "");
}

/** A plain-text table with aligned columns, for the text/plain fallback. */
export function textTable(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export const pct = (x: number | null | undefined): string =>
  x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`;
export const mega = (x: number): string => `${(x / 1e6).toFixed(2)}M`;
