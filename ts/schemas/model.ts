// Model specs: which backbone, how wide, and how its MoE layers route.
import { z } from "zod";

/** Backbones known to the worker's model registry. */
export const ARCHS = [
  "resnet18",
  "resnet34",
  "resnet50",
  "wrn28_4",
  "wrn28_10",
  "wrn34_10",
  "vgg16_bn",
  "densenet_cifar",
  "resnet18_imagenet",
  "resnet50_imagenet",
] as const;

/** How the MoE layers of a model choose and run their experts. */
export const MoESpec = z
  .object({
    experts: z.int().min(1).default(2).describe("Number of experts E per MoE layer (default 2)."),
    router: z
      .enum(["image", "layer"])
      .default("image")
      .describe(
        "'image': one small CNN on the input picks one expert for every MoE layer (the paper's code); 'layer': a light gate per MoE layer (the paper's appendix). Default 'image'.",
      ),
    execution: z
      .enum(["sparse", "masked"])
      .default("sparse")
      .describe(
        "'sparse': group the batch by chosen expert and run only the active channels; 'masked': run every expert and keep the chosen group (reference). Default 'sparse'.",
      ),
    noise: z
      .number()
      .min(0)
      .default(0)
      .describe("Std of Gaussian noise added to router scores in training mode (default 0)."),
    temperature: z
      .number()
      .gt(0)
      .default(1)
      .describe("Router scores are divided by this before the softmax (default 1)."),
    router_width: z
      .number()
      .gt(0)
      .nullable()
      .default(null)
      .describe(
        "Channel multiplier of the image router's 16/32/64 stages; null = the model's `width`, so the router shrinks with the backbone and never costs more than it (default null).",
      ),
  })
  .strict()
  .describe("Mixture-of-Experts settings; null for a dense model.");

/** A model: backbone, geometry, normalization and optional MoE routing. */
export const ModelSpec = z
  .object({
    arch: z.enum(ARCHS).describe("Backbone name from the model registry."),
    num_classes: z.int().min(2).default(10).describe("Output classes (default 10)."),
    in_channels: z.int().min(1).default(3).describe("Input channels (default 3)."),
    input_size: z.int().min(1).default(32).describe("Input height = width in pixels (default 32)."),
    width: z
      .number()
      .gt(0)
      .default(1)
      .describe("Base width multiplier applied to every layer (default 1; small values make CPU runs practical)."),
    ratio: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe(
        "Width ratio r in (0, 1]: an MoE expert, or an S-Dense layer, has floor(r*C) of the C channels (default 1).",
      ),
    normalize: z
      .object({
        mean: z.array(z.number()).min(1).describe("Per-channel mean, in [0,1] pixel units."),
        std: z.array(z.number().gt(0)).min(1).describe("Per-channel std, > 0."),
      })
      .strict()
      .nullable()
      .default(null)
      .describe("Normalization applied inside the model so inputs stay in [0,1] (default none)."),
    moe: MoESpec.nullable().default(null).describe("MoE settings, or null for a dense model (default null)."),
    seed: z.int().min(0).nullable().default(null).describe("Seed for weight initialization (default: unseeded)."),
  })
  .strict();

export type ModelSpec = z.input<typeof ModelSpec>;
export type ResolvedModelSpec = z.output<typeof ModelSpec>;

/** Parameter counts of a model. */
export const ParamCounts = z
  .object({
    total: z.int(),
    router: z.int().describe("Parameters of the router(s); 0 for a dense model."),
    backbone: z.int().describe("Everything that is not router: stem, experts, BatchNorms, classifier."),
  })
  .strict();

/** Multiply-accumulates per sample, counted from the layers actually executed. */
export const MacCounts = z
  .object({
    dense: z.number().describe("The same architecture built dense at ratio 1."),
    active: z.number().describe("The chosen pathway of the backbone (sparse execution), router excluded."),
    router: z.number().describe("The router(s)."),
    masked: z.number().describe("What masked execution computes: every expert, then a gather."),
    total_active: z.number().describe("active + router: the cost of one inference."),
  })
  .strict();

/** What `model.describe` reports. */
export const ModelDescription = z
  .object({
    handle: z.string(),
    arch: z.string(),
    is_moe: z.boolean(),
    experts: z.int().describe("E; 1 for a dense model."),
    ratio: z.number(),
    router: z.enum(["image", "layer"]).nullable(),
    execution: z.enum(["sparse", "masked"]).nullable(),
    moe_layers: z.int().describe("Number of MoE conv layers."),
    routing_layers: z.int().describe("Independent routing decisions per sample (1 for the image router)."),
    params: ParamCounts,
    macs: MacCounts,
    device: z.string(),
    training: z.boolean().describe("Whether the model is in training mode."),
    spec: ModelSpec,
  })
  .strict();

/** Expert load over a batch, per routing layer. */
export const RoutingStats = z
  .object({
    num_samples: z.int(),
    num_experts: z.int(),
    histogram: z.array(z.array(z.int())).describe("[layer][expert] sample counts."),
    share: z.array(z.array(z.number())).describe("[layer][expert] share of samples."),
    entropy: z.array(z.number()).describe("Per layer, nats."),
    entropy_normalized: z.array(z.number()).describe("Per layer, entropy / ln(E), in [0, 1]; 1 = balanced."),
    max_share: z.array(z.number()).describe("Per layer, the largest share any expert takes."),
  })
  .strict();

export const ModelCreateParams = z
  .object({
    spec: ModelSpec,
    device: z.string().optional().describe("torch device; default: the worker's default device."),
  })
  .strict();
export const ModelHandleParams = z.object({ handle: z.string().describe("A model handle.") }).strict();
export const ModelPredictParams = z
  .object({
    handle: z.string().describe("A model handle."),
    batch_size: z.int().min(1).default(256).describe("Samples per forward pass (default 256)."),
    routes: z
      .boolean()
      .default(true)
      .describe("Return the chosen expert(s) per sample and the router scores (default true)."),
    max_share: z
      .number()
      .gt(0)
      .max(1)
      .default(0.9)
      .describe("A 'routing_collapse' warning is emitted when one expert takes more than this share (default 0.9)."),
  })
  .strict();
export const ModelPredictResult = z
  .object({
    samples: z.int(),
    routing: RoutingStats.nullable().describe("Expert load; null for a dense model."),
    warnings: z.array(z.object({ code: z.string(), message: z.string() }).passthrough()),
  })
  .strict();
export const ModelConfigureParams = z
  .object({
    handle: z.string().describe("A model handle."),
    execution: z.enum(["sparse", "masked"]).optional().describe("Switch the MoE execution path."),
    device: z.string().optional().describe("Move the model to this torch device."),
  })
  .strict();
export const ModelSaveParams = z
  .object({
    handle: z.string().describe("A model handle."),
    path: z.string().min(1).describe("Checkpoint path on the worker, inside its workspace root."),
  })
  .strict();
export const ModelSaveResult = z.object({ path: z.string(), bytes: z.int() }).strict();
export const ModelLoadParams = z
  .object({
    path: z.string().min(1).describe("Checkpoint path on the worker, inside its workspace root."),
    device: z.string().optional().describe("torch device; default: the worker's default device."),
  })
  .strict();
