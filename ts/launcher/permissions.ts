// Deno permissions the SDK needs, checked before use so that every missing flag is named at once.
import { LaunchError } from "../protocol/errors.js";

/** One permission, in the shape of Deno's `PermissionDescriptor`. */
export type PermissionNeed =
  | { name: "run"; command: string }
  | { name: "read" | "write"; path: string }
  | { name: "net"; host: string }
  | { name: "env" };

interface DenoPermissions {
  permissions: { querySync(need: PermissionNeed): { state: "granted" | "prompt" | "denied" } };
}

/** Every flag the SDK may need, for error messages and the README. */
export const DENO_FLAGS = "--allow-run --allow-net --allow-read --allow-write --allow-env";

function describeNeed(need: PermissionNeed): string {
  if (need.name === "run") return `run ${need.command}`;
  if (need.name === "net") return `net ${need.host}`;
  if (need.name === "env") return "env";
  return `${need.name} ${need.path}`;
}

/**
 * Under Deno, throws LaunchError naming each permission in `needs` that is not granted
 * and the flags that grant them. Nothing is prompted for: a notebook kernel cannot
 * answer a prompt. Outside Deno it does nothing.
 */
export function checkDenoPermissions(needs: PermissionNeed[], what: string): void {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno;
  if (!deno) return;
  const missing = needs.filter((need) => deno.permissions.querySync(need).state !== "granted");
  if (missing.length === 0) return;
  const flags = [...new Set(missing.map((need) => `--allow-${need.name}`))];
  const detail = missing.map(describeNeed);
  throw new LaunchError(
    "launch_failed",
    `${what} needs Deno permissions that were not granted (${detail.join("; ")}): run deno with ` +
      `${flags.join(" ")}, or with all the SDK uses: ${DENO_FLAGS} (or -A)`,
    { missing: detail, flags },
  );
}
