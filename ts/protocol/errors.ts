// Errors as data: one typed class per stable error code (docs/protocol.md, Errors).

/** Codes the worker reports. */
export const WORKER_ERROR_CODES = [
  "invalid_spec",
  "not_found",
  "bad_tensor",
  "bad_message",
  "bad_checkpoint",
  "bad_data",
  "too_large",
  "unsupported_version",
  "forbidden_path",
  "non_finite",
  "out_of_memory",
  "cancelled",
  "shutting_down",
  "stale_handle",
  "internal",
] as const;
export type WorkerErrorCode = (typeof WORKER_ERROR_CODES)[number];

/** Codes the SDK raises on its own side. */
export type ClientErrorCode =
  | "timeout"
  | "worker_died"
  | "worker_closed"
  | "launch_failed"
  | "protocol"
  | "handshake_failed"
  | "transport";

/** Base of every error the SDK raises; `code` is stable, `details` is data. */
export class AdvmoeError extends Error {
  readonly code: WorkerErrorCode | ClientErrorCode;
  readonly details: Record<string, unknown>;
  constructor(
    code: WorkerErrorCode | ClientErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** The worker refused a request; `code` is the worker's error code. */
export class WorkerError extends AdvmoeError {
  declare readonly code: WorkerErrorCode;
  /** The method of the request that failed. */
  method?: string;
}
/** A spec or parameter broke a rule: `path` names the field, `rule` the rule. */
export class InvalidSpecError extends WorkerError {
  get path(): string {
    return String(this.details.path ?? "");
  }
  get rule(): string {
    return String(this.details.rule ?? "");
  }
}
/** Unknown method, name or handle; `known` lists what exists. */
export class NotFoundError extends WorkerError {
  get known(): string[] {
    return Array.isArray(this.details.known) ? (this.details.known as string[]) : [];
  }
}
export class BadTensorError extends WorkerError {}
export class BadMessageError extends WorkerError {}
export class BadCheckpointError extends WorkerError {}
export class BadDataError extends WorkerError {}
export class TooLargeError extends WorkerError {}
export class UnsupportedVersionError extends WorkerError {}
export class ForbiddenPathError extends WorkerError {}
export class NonFiniteError extends WorkerError {}
export class OutOfMemoryError extends WorkerError {}
export class CancelledError extends WorkerError {}
export class ShuttingDownError extends WorkerError {}
/**
 * A handle made by a worker process that has since been replaced by a supervised restart:
 * the object it named died with that process. `details.handle` names it.
 */
export class StaleHandleError extends WorkerError {
  get handle(): string {
    return String(this.details.handle ?? "");
  }
}
export class InternalWorkerError extends WorkerError {}

const CLASSES: Record<WorkerErrorCode, new (...a: ConstructorParameters<typeof WorkerError>) => WorkerError> = {
  invalid_spec: InvalidSpecError,
  not_found: NotFoundError,
  bad_tensor: BadTensorError,
  bad_message: BadMessageError,
  bad_checkpoint: BadCheckpointError,
  bad_data: BadDataError,
  too_large: TooLargeError,
  unsupported_version: UnsupportedVersionError,
  forbidden_path: ForbiddenPathError,
  non_finite: NonFiniteError,
  out_of_memory: OutOfMemoryError,
  cancelled: CancelledError,
  shutting_down: ShuttingDownError,
  stale_handle: StaleHandleError,
  internal: InternalWorkerError,
};

/** The typed error for a worker's `{code, message, details}` payload. */
export function workerError(payload: unknown, method?: string): WorkerError {
  const p = (payload ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
  const code = (WORKER_ERROR_CODES as readonly string[]).includes(String(p.code))
    ? (p.code as WorkerErrorCode)
    : "internal";
  const details = p.details && typeof p.details === "object" ? (p.details as Record<string, unknown>) : {};
  const err = new CLASSES[code](code, String(p.message ?? "worker error"), details);
  if (method) err.method = method;
  return err;
}

/** A call did not finish within its timeout. */
export class TimeoutError extends AdvmoeError {}
/** The worker process exited or stopped answering heartbeats. */
export class WorkerDiedError extends AdvmoeError {
  get exitCode(): number | null {
    return (this.details.exitCode as number | null | undefined) ?? null;
  }
  get signal(): string | null {
    return (this.details.signal as string | null | undefined) ?? null;
  }
  /** The last lines the worker wrote to stderr. */
  get stderrTail(): string[] {
    return (this.details.stderr as string[] | undefined) ?? [];
  }
}
/** A call on a client that was closed or a worker that was shut down. */
export class WorkerClosedError extends AdvmoeError {}
/** The worker could not be started or did not become ready. */
export class LaunchError extends AdvmoeError {}
/** The peer broke the protocol (bad signature, undecodable message). */
export class ProtocolError extends AdvmoeError {}
/** The encrypted (CURVE) connection could not be set up: a wrong server key, or a peer without CURVE. */
export class HandshakeError extends AdvmoeError {}
/**
 * The byte stream to the worker failed below the advmoe protocol: the connection could
 * not be opened or broke (for example in the middle of a message), or the peer spoke
 * ZMTP wrongly, or a transport is not available. `reason` is a stable word for which
 * (`connect`, `permission`, `handshake`, `mechanism`, `truncated`, `reset`, `closed`,
 * `frame_too_large`, `bad_frame`, `unsupported`).
 */
export class TransportError extends AdvmoeError {
  get reason(): string {
    return String(this.details.reason ?? "");
  }
}
