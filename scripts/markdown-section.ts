// Replaces the text between `<!-- NAME: begin -->` and `<!-- NAME: end -->` in a markdown
// file, so measured results land in BENCHMARKS.md from the script that measured them.
import { readFileSync, writeFileSync } from "node:fs";

/** Writes `text` into the section `name` of `file`; throws if the markers are missing. */
export function writeSection(file: string, name: string, text: string): void {
  const begin = `<!-- ${name}: begin -->`;
  const end = `<!-- ${name}: end -->`;
  const current = readFileSync(file, "utf8");
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${file} has no ${begin} ... ${end} section`);
  writeFileSync(file, `${current.slice(0, from + begin.length)}\n${text}\n${current.slice(to)}`);
}
