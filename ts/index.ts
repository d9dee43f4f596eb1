// advmoe: build, adversarially train and evaluate MoE-CNNs from TypeScript.
export * from "./client/connection.js";
export * from "./client/model.js";
export * from "./client/worker.js";
export * from "./launcher/python.js";
export * from "./launcher/spawn.js";
export * from "./protocol/codec.js";
export * from "./protocol/errors.js";
export * from "./protocol/signing.js";
export * from "./protocol/tensor.js";
export * from "./schemas/model.js";
export * from "./schemas/registry.js";
export * from "./transport/transport.js";
export * from "./transport/zeromq.js";
