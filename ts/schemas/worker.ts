// Params and results of the worker's own methods: info, echo, sleep, objects, shutdown.
import { z } from "zod";
import { Handle } from "./common.js";

export const InfoParams = z.object({}).strict();
export const InfoResult = z
  .object({
    worker_version: z.string(),
    protocol: z.int(),
    python: z.string(),
    torch: z.string(),
    numpy: z.string(),
    platform: z.string(),
    pid: z.int(),
    executable: z.string().describe("The Python interpreter the worker runs on."),
    cuda_available: z.boolean(),
    devices: z.array(
      z
        .object({
          name: z.string().describe("torch device string, e.g. 'cpu' or 'cuda:0'."),
          kind: z.enum(["cpu", "cuda", "mps"]),
          description: z.string(),
          memory_bytes: z.int().nullable(),
        })
        .strict(),
    ),
    default_device: z.string(),
    cpu_threads: z.int().describe("torch.get_num_threads()."),
    workspace: z.string().describe("Workspace root: checkpoint and data paths must lie inside it."),
    max_message_bytes: z.int(),
    stats: z
      .object({
        received: z.int(),
        dropped_unsigned: z.int().describe("Messages dropped for a missing or bad signature."),
        dropped_replay: z.int().describe("Messages dropped as replays or out of the time window."),
        bad_messages: z.int().describe("Signed messages that could not be decoded."),
        dropped_too_large: z.int().describe("Messages over the size or frame-count limit, let go as they arrived."),
        requests: z.int(),
        errors: z.int(),
      })
      .strict(),
    distributed: z
      .object({
        backend: z.string().describe("'nccl' (GPUs) or 'gloo' (CPU)."),
        world_size: z.int().min(2).describe("Ranks in the group, on every machine."),
        pids: z.array(z.int()).describe("Process id of each rank, in rank order (each on its own machine)."),
      })
      .strict()
      .nullable()
      .optional()
      .describe("Under torchrun: the process group rank 0 serves for; null for one process."),
  })
  .strict();

export const EchoParams = z
  .object({
    note: z.string().optional().describe("Returned unchanged; for tests."),
  })
  .strict();
export const EchoResult = z.object({ note: z.string().nullable() }).strict();

export const SleepParams = z
  .object({
    seconds: z.number().min(0).max(3600).describe("Total time to wait, in seconds."),
    tick: z
      .number()
      .gt(0)
      .max(60)
      .default(0.05)
      .describe("Seconds between progress events and cancellation checks (default 0.05)."),
  })
  .strict();
export const SleepResult = z.object({ slept: z.number(), ticks: z.int() }).strict();

export const ShutdownParams = z.object({}).strict();
export const ShutdownResult = z.object({ ok: z.literal(true) }).strict();

export const ObjectInfo = z
  .object({
    handle: Handle,
    kind: z.string(),
    summary: z.record(z.string(), z.unknown()),
  })
  .strict();

export const ObjectListParams = z
  .object({ kind: z.string().optional().describe("Only objects of this kind.") })
  .strict();
export const ObjectListResult = z.object({ objects: z.array(ObjectInfo) }).strict();

export const ObjectHandleParams = z.object({ handle: Handle }).strict();
export const ObjectDescribeResult = ObjectInfo;
export const ObjectDeleteResult = z.object({ deleted: z.boolean() }).strict();

export const TransferSinkParams = z.object({}).strict();
export const TransferSinkResult = z.object({ bytes: z.int() }).strict();
export const TransferSourceParams = z
  .object({
    bytes: z
      .int()
      .min(0)
      .max(2 ** 31)
      .describe("Size of the uint8 tensor to send back, in bytes."),
  })
  .strict();
export const TransferSourceResult = z.object({ bytes: z.int() }).strict();
