// Data specs: which images the worker trains and evaluates on, and how it splits them.
import { z } from "zod";

/** Worker-side training augmentation, applied batch-wise on tensors. */
export const AugmentSpec = z
  .object({
    crop_padding: z
      .int()
      .min(0)
      .default(0)
      .describe("Random crop after zero padding by this many pixels per side; 0 = no crop (default 0)."),
    flip: z.boolean().default(false).describe("Random horizontal flip with probability 0.5 (default false)."),
  })
  .strict()
  .describe("Training augmentation (random crop with padding, horizontal flip); null = none.");

const CIFAR_AUGMENT = { crop_padding: 4, flip: true };

/** Fields every data kind shares: splits, subsets, loader workers, augmentation. */
const common = {
  val_fraction: z
    .number()
    .min(0)
    .max(0.9)
    .default(0)
    .describe("Share of the training split held out as a seeded validation split, in [0, 0.9] (default 0)."),
  split_seed: z
    .int()
    .min(0)
    .default(0)
    .describe("Seed of the train/val (and digits' train/test) split and of max_train/max_test subsets (default 0)."),
  max_train: z
    .int()
    .min(1)
    .nullable()
    .default(null)
    .describe("Use at most this many training images, a seeded random subset (default null = all)."),
  max_test: z
    .int()
    .min(1)
    .nullable()
    .default(null)
    .describe("Use at most this many test images, a seeded random subset (default null = all)."),
  workers: z
    .int()
    .min(0)
    .default(0)
    .describe("Threads that decode image files of a batch in parallel (image_folder); 0 = inline (default 0)."),
};

const augment = AugmentSpec.nullable().default(null).describe("Training augmentation; null = none (default null).");

/** scikit-learn's handwritten digits: 1,797 real 8x8 images that ship with the package. */
export const DigitsData = z
  .object({
    kind: z.literal("digits"),
    size: z
      .int()
      .min(4)
      .default(32)
      .describe("Image side in pixels after bilinear resizing of the 8x8 originals (default 32)."),
    channels: z
      .union([z.literal(1), z.literal(3)])
      .default(3)
      .describe("1 = grey, 3 = the grey image repeated on three channels (default 3)."),
    test_fraction: z
      .number()
      .gt(0)
      .max(0.9)
      .default(0.2)
      .describe("Share of the images in the seeded test split, in (0, 0.9] (default 0.2)."),
    ...common,
    augment,
  })
  .strict();

/** A procedural, seeded set whose classes differ by smooth colour patterns (for tests). */
export const SyntheticData = z
  .object({
    kind: z.literal("synthetic"),
    num_classes: z.int().min(2).default(10).describe("Number of classes (default 10)."),
    size: z.int().min(4).default(32).describe("Image side in pixels (default 32)."),
    channels: z.int().min(1).default(3).describe("Image channels (default 3)."),
    train_size: z.int().min(1).default(1024).describe("Training images (default 1024)."),
    test_size: z.int().min(0).default(256).describe("Test images; 0 = no test split (default 256)."),
    noise: z.number().min(0).default(0.1).describe("Std of Gaussian pixel noise, in [0,1] pixel units (default 0.1)."),
    seed: z.int().min(0).default(0).describe("Seed of the class patterns and of the samples (default 0)."),
    ...common,
    augment,
  })
  .strict();

const cifarCommon = {
  root: z
    .string()
    .min(1)
    .describe("Folder on the worker holding the extracted python-format batches (or its parent); required."),
  download: z
    .boolean()
    .default(false)
    .describe("Fetch the official archive into root when absent and check its MD5 (default false)."),
  ...common,
  augment: AugmentSpec.nullable()
    .default(CIFAR_AUGMENT)
    .describe("Training augmentation; null = none (default crop with 4-pixel padding + flip)."),
};

/** CIFAR-10 from the standard python pickle format (data_batch_1..5, test_batch, batches.meta). */
export const Cifar10Data = z.object({ kind: z.literal("cifar10"), ...cifarCommon }).strict();

/** CIFAR-100 from the standard python pickle format (train, test, meta). */
export const Cifar100Data = z
  .object({
    kind: z.literal("cifar100"),
    labels: z
      .enum(["fine", "coarse"])
      .default("fine")
      .describe("'fine' = 100 classes, 'coarse' = 20 superclasses (default 'fine')."),
    ...cifarCommon,
  })
  .strict();

/** An ImageFolder tree, root/split/class/.../image (TinyImageNet, ImageNet). */
export const ImageFolderData = z
  .object({
    kind: z.literal("image_folder"),
    root: z.string().min(1).describe("Folder on the worker that holds the split folders; required."),
    train_dir: z.string().min(1).default("train").describe("Training split folder under root (default 'train')."),
    test_dir: z
      .string()
      .min(1)
      .nullable()
      .default("val")
      .describe(
        "Test split folder under root, class folders or TinyImageNet's images/ + val_annotations.txt; null = none (default 'val').",
      ),
    size: z
      .int()
      .min(4)
      .default(64)
      .describe("Shorter side resized to this (bilinear), then centre-cropped to size x size pixels (default 64)."),
    channels: z
      .union([z.literal(1), z.literal(3)])
      .default(3)
      .describe("1 = grey (luma), 3 = RGB (default 3)."),
    cache: z
      .boolean()
      .default(false)
      .describe("Decode every image once into memory as uint8 (default false: decode per batch)."),
    ...common,
    augment,
  })
  .strict();

/** Images and labels uploaded from the client as tensors. */
export const TensorsData = z
  .object({
    kind: z.literal("tensors"),
    train_images: z
      .string()
      .min(1)
      .default("train_images")
      .describe(
        "Name of the uploaded (N, C, H, W) uint8 (0-255) or float ([0,1]) image tensor (default 'train_images').",
      ),
    train_labels: z
      .string()
      .min(1)
      .default("train_labels")
      .describe("Name of the uploaded (N,) integer label tensor (default 'train_labels')."),
    test_images: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Name of the test image tensor; null = no test split (default null)."),
    test_labels: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Name of the test label tensor; given together with test_images (default null)."),
    num_classes: z
      .int()
      .min(2)
      .nullable()
      .default(null)
      .describe("Number of classes (default null = largest training label + 1)."),
    ...common,
    augment,
  })
  .strict();

/** A data set for training and evaluation, by kind. */
export const DataSpec = z.discriminatedUnion("kind", [
  DigitsData,
  SyntheticData,
  Cifar10Data,
  Cifar100Data,
  ImageFolderData,
  TensorsData,
]);

export type DataSpec = z.input<typeof DataSpec>;
export type ResolvedDataSpec = z.output<typeof DataSpec>;

/** What the worker reports about a data set it holds. */
export const DataDescription = z
  .object({
    handle: z.string(),
    kind: z.string(),
    num_classes: z.int(),
    in_channels: z.int(),
    input_size: z.int(),
    train: z.int().describe("Training samples (after the validation split)."),
    val: z.int(),
    test: z.int(),
    classes: z.array(z.string()),
    spec: z.record(z.string(), z.unknown()).describe("The data spec with defaults filled."),
  })
  .passthrough();

export const DataCreateParams = z
  .object({ spec: DataSpec.describe("The data set; `tensors` data sets name tensors sent with the request.") })
  .strict();
export const DataHandleParams = z.object({ handle: z.string().describe("A data set handle.") }).strict();
export const DataTakeParams = z
  .object({
    handle: z.string().describe("A data set handle."),
    split: z.enum(["train", "val", "test"]).default("test").describe("Which split (default test)."),
    start: z.int().min(0).default(0).describe("First sample index (default 0)."),
    count: z.int().min(1).max(100_000).default(64).describe("Number of samples (default 64)."),
  })
  .strict();
export const DataTakeResult = z.object({ count: z.int() }).strict();
