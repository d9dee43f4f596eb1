// Writes schemas/{specs,methods}/*.json from the zod schemas (`npm run schemas`).
// With --check it writes nothing and exits 1 when a committed file is stale.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { renderSchemas } from "../ts/schemas/json-schema.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "schemas");
const check = process.argv.includes("--check");
const wanted = renderSchemas();
const stale: string[] = [];

for (const [file, text] of wanted) {
  const path = join(root, file);
  let current: string | undefined;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    current = undefined;
  }
  if (current === text) continue;
  stale.push(file);
  if (!check) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}
for (const folder of ["specs", "methods", "events"]) {
  let files: string[] = [];
  try {
    files = readdirSync(join(root, folder));
  } catch {
    continue;
  }
  for (const name of files) {
    const file = `${folder}/${name}`;
    if (wanted.has(file)) continue;
    stale.push(`${file} (no longer generated)`);
    if (!check) rmSync(join(root, file));
  }
}
if (check && stale.length > 0) {
  console.error(`stale JSON schemas (run \`npm run schemas\`):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log(
  `${check ? "checked" : "wrote"} ${wanted.size} schemas in ${relative(process.cwd(), root) || "."}` +
    (stale.length && !check ? ` (${stale.length} changed)` : ""),
);
