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
      .default(1)
      .describe("Channel multiplier of the image router's 16/32/64 stages (default 1)."),
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
