// advmoe: build, adversarially train and evaluate MoE-CNNs from TypeScript.
// The public surface, listed name by name. Rich display lives in `advmoe/display`.

export type { CallOptions, ConnectionOptions, ConnectionStats, Reply, WorkerEvent } from "./client/connection.js";
export { CallStream, Connection } from "./client/connection.js";
export type { DataInfo } from "./client/data.js";
export { Dataset } from "./client/data.js";
export type { ModelInfo, Prediction, PredictSpec } from "./client/model.js";
export { Model } from "./client/model.js";
export type { ResumedRunResult } from "./client/resume-run.js";
export type { SegmentMac, SharedMemoryOptions } from "./client/shared-memory.js";
export { SharedMemory, sweepStale } from "./client/shared-memory.js";
export type { EpochResult, RunResult, StepResult, TrainerInfo } from "./client/trainer.js";
export { Trainer } from "./client/trainer.js";
export type { HandleRef, PythonChoice, RequestOptions, TypedCallOptions } from "./client/worker.js";
export { checkParams, Worker } from "./client/worker.js";
export { PACKAGE_ROOT, PYTHON_ENV, resolvePython } from "./launcher/python.js";
export type { PyProxy, PythoniaOptions } from "./launcher/pythonia.js";
export { PythonBridge, PythoniaWorker, spawnPythoniaWorker } from "./launcher/pythonia.js";
export type { ConnectOptions, LogStream, SpawnOptions } from "./launcher/spawn.js";
export { connectWorker, SpawnedWorker, spawnWorker } from "./launcher/spawn.js";
export type { RestartPolicy } from "./launcher/supervisor.js";
export { SupervisedWorker } from "./launcher/supervisor.js";
export type { ClientErrorCode, WorkerErrorCode } from "./protocol/errors.js";
export {
  AdvmoeError,
  BadCheckpointError,
  BadDataError,
  BadMessageError,
  BadTensorError,
  CancelledError,
  ForbiddenPathError,
  HandshakeError,
  InternalWorkerError,
  InvalidSpecError,
  LaunchError,
  NonFiniteError,
  NotFoundError,
  OutOfMemoryError,
  ProtocolError,
  ShuttingDownError,
  StaleHandleError,
  TimeoutError,
  TooLargeError,
  TransportError,
  UnsupportedVersionError,
  WORKER_ERROR_CODES,
  WorkerClosedError,
  WorkerDiedError,
  WorkerError,
} from "./protocol/errors.js";
export type { DType, Tensor, TypedArray } from "./protocol/tensor.js";
export { DTYPES, numel, tensor, toNumbers } from "./protocol/tensor.js";
export type {
  AttackRequestSpec,
  AttackSpec,
  AutoAttackSpec,
  ResolvedAttackSpec,
} from "./schemas/attack.js";
export { ATTACK_NAMES } from "./schemas/attack.js";
export type { DataSpec, ResolvedDataSpec } from "./schemas/data.js";
export type { EvaluationReport, EvaluationSpec, ResolvedEvaluationSpec } from "./schemas/evaluation.js";
export type {
  AnyEvent,
  EpochEvent,
  EvaluationEvent,
  EventOf,
  StepEvent,
  StreamingMethod,
  SupervisorEvent,
  SupervisorEventData,
  TrainingEvent,
} from "./schemas/events.js";
export { EVENTS, GaveUpEvent, METHOD_EVENTS, RestartEvent, SUPERVISOR_EVENTS } from "./schemas/events.js";
export type { ModelSpec, ResolvedModelSpec } from "./schemas/model.js";
export { ARCHS } from "./schemas/model.js";
export type { MethodName, ParamsOf, ResultOf } from "./schemas/registry.js";
export { METHODS, SPECS } from "./schemas/registry.js";
export type { ResolvedTrainerSpec, TrainerSpec } from "./schemas/trainer.js";
export { TRAINING_METHODS } from "./schemas/trainer.js";
export type { SocketAddress } from "./transport/endpoint.js";
export { parseEndpoint } from "./transport/endpoint.js";
export type { TransportKind } from "./transport/select.js";
export { defaultTransport, runtime, transportFactory } from "./transport/select.js";
export type { CurveKeys, Transport, TransportFactory, TransportOptions } from "./transport/transport.js";
// The native transport is not exported here: importing it loads the `zeromq` addon, which
// must never happen under Deno. `transportFactory("zeromq")` loads it on demand, and Node
// code that wants the module itself imports "advmoe/zeromq".
export type { ZmtpOptions } from "./transport/zmtp.js";
export { ZmtpTransport, zmtpTransport } from "./transport/zmtp.js";
