// Small building blocks shared by the wire schemas.
import { z } from "zod";

/** A handle to an object held in the worker's registry, e.g. "model:3". */
export const Handle = z
  .string()
  .regex(/^[a-z_]+:[0-9]+$/)
  .describe("Handle of an object in the worker's registry, e.g. 'model:3'.");

/** A path on the worker's file system, resolved inside its workspace root. */
export const WorkspacePath = z
  .string()
  .min(1)
  .describe("Path on the worker, relative to (or inside) its workspace root.");
