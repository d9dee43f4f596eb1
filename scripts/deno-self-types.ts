// After `tsc`, points each dist/**/*.js at its .d.ts with a `@ts-self-types` comment, so
// Deno type-checks code that imports the built SDK by path (it reads no .d.ts on its own
// for plain JS files; packages installed into node_modules get their types from package.json).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");

for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".js")) continue;
  const path = join(entry.parentPath, entry.name);
  const text = readFileSync(path, "utf8");
  if (text.includes("@ts-self-types")) continue;
  // On the first line (after a shebang) without a line break, so source maps stay right.
  const directive = `/* @ts-self-types="./${basename(entry.name, ".js")}.d.ts" */ `;
  const shebang = text.startsWith("#!") ? text.slice(0, text.indexOf("\n") + 1) : "";
  writeFileSync(path, shebang + directive + text.slice(shebang.length));
}
