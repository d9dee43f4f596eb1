// Trainer specs: method, training attack, optimizers and schedules, AdvMoE phases, run control.
import { z } from "zod";
import { EvaluationReport, EvaluationSpec, MaxShare } from "./evaluation.js";

/** Training methods; each is a policy over phases and losses of the one training engine. */
export const TRAINING_METHODS = ["standard", "pgd-at", "trades", "at-moe", "advmoe"] as const;

/** An optimizer and its settings (defaults: the paper code's SGD). */
export const OptimizerSpec = z
  .object({
    name: z.enum(["sgd", "adam", "adamw"]).default("sgd").describe("Optimizer (default 'sgd')."),
    lr: z.number().gt(0).default(0.1).describe("Base learning rate, > 0 (default 0.1)."),
    momentum: z.number().min(0).max(1).default(0.9).describe("SGD momentum in [0, 1] (default 0.9; SGD only)."),
    nesterov: z.boolean().default(false).describe("Nesterov momentum, needs momentum > 0 (default false; SGD only)."),
    weight_decay: z
      .number()
      .min(0)
      .default(5e-4)
      .describe("Weight decay: L2 for SGD/Adam, decoupled for AdamW (default 5e-4)."),
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([0.9, 0.999])
      .describe("Adam/AdamW moment decay rates, each in [0, 1) (default [0.9, 0.999])."),
    eps: z.number().gt(0).default(1e-8).describe("Adam/AdamW denominator epsilon (default 1e-8)."),
  })
  .strict();

/** A learning-rate schedule, a pure function of training progress. */
export const ScheduleSpec = z
  .object({
    name: z
      .enum(["cosine", "step", "constant"])
      .default("cosine")
      .describe("'cosine' to min_lr, 'step' (x gamma at each milestone) or 'constant' (default 'cosine')."),
    interval: z
      .enum(["epoch", "step"])
      .default("epoch")
      .describe("Update the rate once per epoch (the paper code) or every step (default 'epoch')."),
    warmup_epochs: z
      .number()
      .min(0)
      .default(0)
      .describe("Linear warmup length in epochs, fractions allowed with interval 'step' (default 0)."),
    milestones: z
      .array(z.number().gt(0).max(1))
      .default([0.75, 0.9])
      .describe("'step' schedule: milestones as fractions of the run, each in (0, 1] (default [0.75, 0.9])."),
    gamma: z.number().gt(0).default(0.1).describe("'step' schedule: factor at each milestone (default 0.1)."),
    min_lr: z.number().min(0).default(0).describe("'cosine' schedule: final learning rate (default 0)."),
  })
  .strict();

/** The attack that makes the training examples (L∞). */
export const TrainAttackSpec = z
  .object({
    eps: z
      .number()
      .min(0)
      .default(8 / 255)
      .describe("L∞ radius in [0,1] pixel units (default 8/255)."),
    steps: z.int().min(1).default(2).describe("Ascent steps (default 2, the paper code's training attack)."),
    step_size: z
      .number()
      .gt(0)
      .default(5 / 255)
      .describe("Step size in pixel units (default 5/255)."),
    random_start: z
      .boolean()
      .default(true)
      .describe("PGD: start uniformly in the eps-ball (default true); TRADES always starts at x + 0.001·N(0,1)."),
  })
  .strict();

/** One entry of the AdvMoE phase cycle. */
export const PhaseStep = z
  .object({
    phase: z
      .enum(["router", "expert"])
      .describe("'router': update the router, experts frozen; 'expert': update the rest, router frozen."),
    steps: z.int().min(1).default(1).describe("Consecutive steps of this phase (default 1)."),
  })
  .strict();

/** How a model is trained, step by step or for whole epochs. */
export const TrainerSpec = z
  .object({
    method: z
      .enum(TRAINING_METHODS)
      .describe(
        "'standard' (clean CE), 'pgd-at' (CE on PGD examples), 'trades', 'at-moe' (joint AT of router and experts, one optimizer), 'advmoe' (router-expert alternation); required.",
      ),
    robust_loss: z
      .enum(["pgd", "trades"])
      .default("trades")
      .describe(
        "Robust objective of 'at-moe' and 'advmoe': CE on PGD examples, or TRADES CE + beta·KL with the KL attack (default 'trades', the paper code's).",
      ),
    beta: z.number().min(0).default(6).describe("TRADES weight of the KL term (default 6)."),
    router_supervision: z
      .enum(["none", "label_mod_e", "paper"])
      .nullable()
      .default(null)
      .describe(
        "What keeps a top-1 router using its experts. 'label_mod_e': phases that update the router add alpha·CE(router, y mod E) to the robust loss, with a router-aware training attack; 'paper': the paper code's router objective, alpha·CE(router(x), y mod E) + beta·KL(router(x) || router(x_adv)) and no task loss in a router-only phase; 'none': the robust loss alone (a top-1 router then tends to collapse onto one expert). null = the method's default: 'label_mod_e' for 'advmoe', 'none' otherwise (default null).",
      ),
    alpha: z
      .number()
      .min(0)
      .default(6)
      .describe("Weight of the router's CE to y mod E under router_supervision (default 6, the paper code's)."),
    balance: z
      .enum(["none", "switch", "entropy"])
      .default("none")
      .describe(
        "Load-balancing term added where the router is trained: 'switch' = E·Σ f_e·P_e (share routed to e times its mean probability; 1 when balanced), 'entropy' = log E − H(batch-mean routing); 'none' (default). Both are reported in step metrics either way.",
      ),
    balance_weight: z
      .number()
      .min(0)
      .default(0.01)
      .describe("Weight of the balance term (default 0.01, the Switch Transformer's)."),
    max_share: MaxShare.describe(
      "A step whose clean batch sends more than this share of samples to one expert raises a routing_collapse warning event (default 0.9).",
    ),
    attack: TrainAttackSpec.default({
      eps: 8 / 255,
      steps: 2,
      step_size: 5 / 255,
      random_start: true,
    }).describe("Training attack (default eps 8/255, 2 steps of 5/255, random start)."),
    optimizer: OptimizerSpec.default({
      name: "sgd",
      lr: 0.1,
      momentum: 0.9,
      nesterov: false,
      weight_decay: 5e-4,
      betas: [0.9, 0.999],
      eps: 1e-8,
    }).describe(
      "Optimizer of the experts/backbone for 'advmoe', of every parameter otherwise (default SGD lr 0.1, momentum 0.9, wd 5e-4).",
    ),
    router_optimizer: OptimizerSpec.nullable()
      .default(null)
      .describe("'advmoe': the router's own optimizer (default null = same settings as optimizer)."),
    schedule: ScheduleSpec.default({
      name: "cosine",
      interval: "epoch",
      warmup_epochs: 0,
      milestones: [0.75, 0.9],
      gamma: 0.1,
      min_lr: 0,
    }).describe("Learning-rate schedule of optimizer (default cosine per epoch)."),
    router_schedule: ScheduleSpec.nullable()
      .default(null)
      .describe("'advmoe': the router's own schedule (default null = same as schedule)."),
    epochs: z.int().min(1).default(100).describe("Length of the run in epochs; schedules span it (default 100)."),
    batch_size: z.int().min(1).default(128).describe("Training minibatch size in images (default 128)."),
    drop_last: z.boolean().default(false).describe("Skip the last, smaller batch of each epoch (default false)."),
    phases: z
      .array(PhaseStep)
      .min(1)
      .default([
        { phase: "router", steps: 1 },
        { phase: "expert", steps: 1 },
      ])
      .describe("'advmoe': the phase cycle, in order (default one router step, then one expert step)."),
    share_batch: z
      .boolean()
      .default(true)
      .describe(
        "'advmoe': all steps of one cycle use the same minibatch, each with fresh adversarial examples (the paper code); false = a new minibatch per step (default true).",
      ),
    grad_clip: z
      .number()
      .gt(0)
      .nullable()
      .default(null)
      .describe("Clip the global gradient norm of the updated parameters to this (default null = no clipping)."),
    amp: z
      .enum(["none", "bf16"])
      .default("none")
      .describe("bfloat16 autocast, CUDA only; ignored with a warning on CPU (default 'none')."),
    channels_last: z
      .boolean()
      .default(false)
      .describe("channels_last memory format, CUDA only; ignored with a warning on CPU (default false)."),
    track_clean: z
      .boolean()
      .default(true)
      .describe(
        "With PGD losses, one extra no-grad eval-mode forward per step for clean accuracy and routing (default true).",
      ),
    seed: z
      .int()
      .min(0)
      .default(1234)
      .describe("Seed of data order, augmentation, attacks and global RNGs (default 1234)."),
    checkpoint_dir: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Folder on the worker for automatic checkpoints (last.pt); null = none (default null)."),
    checkpoint_every_epochs: z
      .int()
      .min(1)
      .nullable()
      .default(1)
      .describe("Automatic checkpoint every this many epochs; null = never (default 1)."),
    checkpoint_every_steps: z
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe("Automatic checkpoint every this many steps; null = never (default null)."),
    log_dir: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        "Folder on the worker, inside its workspace, for TensorBoard event files: scalars per step and epoch, expert-load histograms, the epoch-end evaluation summary; needs the worker's 'tensorboard' extra; null = none (default null).",
      ),
    eval: EvaluationSpec.nullable()
      .default(null)
      .describe("Evaluation run on the validation split at epoch ends; null = none (default null)."),
    eval_every_epochs: z.int().min(1).default(1).describe("Evaluate every this many epochs (default 1)."),
  })
  .strict();

export type TrainerSpec = z.input<typeof TrainerSpec>;
export type ResolvedTrainerSpec = z.output<typeof TrainerSpec>;

/** What the engine may add beyond the known fields: a number, or a named group of numbers. */
const ExtraMetric = z.union([z.number(), z.null(), z.record(z.string(), z.number())]);
const LearningRates = z
  .record(z.string(), z.number())
  .describe("Learning rate per optimizer ('model'; for advmoe 'router' and 'expert').");

/** One epoch's averages, as `epoch` events and run results report them. */
export const EpochSummary = z
  .object({
    epoch: z.int().min(0).describe("Index of the epoch that ended (0-based)."),
    epochs_completed: z.int().min(0),
    global_step: z.int().min(0),
    steps: z.int().min(0).describe("Steps taken in this epoch."),
    loss: z.number().describe("Mean training loss over the epoch's steps."),
    clean_acc: z.number().nullable().describe("Training accuracy on clean inputs; null when not measured."),
    adv_acc: z.number().nullable().describe("Training accuracy on adversarial inputs; null when not measured."),
    expert_load: z
      .array(z.number())
      .nullable()
      .optional()
      .describe("Mean share of routing decisions per expert over the epoch; null for dense models."),
    time_s: z.number().min(0).describe("Seconds spent in steps."),
    images_per_s: z.number().nullable(),
    lr: LearningRates,
    eval: EvaluationReport.optional().describe("The epoch-end evaluation on the validation split, when one ran."),
    stopped: z.boolean().optional().describe("trainer.epoch: whether the epoch was cut short."),
    steps_run: z.int().min(0).optional().describe("trainer.epoch: steps this call ran."),
  })
  .catchall(ExtraMetric);

/** One step's metrics: a known core, plus any further numbers the engine reports. */
export const StepMetrics = z
  .object({
    phase: z.string().describe("'joint', or for advmoe 'router' / 'expert'."),
    step: z.int().min(1).describe("Global step count after this step."),
    epoch: z.int().min(0),
    batch: z.int().min(0).describe("Index of the batch within its epoch."),
    loss: z.number(),
    terms: z
      .record(z.string(), z.number())
      .describe("The loss's named terms (e.g. 'ce', 'kl', 'router_ce', 'balance_loss')."),
    clean_acc: z.number().nullable(),
    adv_acc: z.number().nullable(),
    router_entropy: z.number().nullable().describe("Mean entropy of the router's probabilities, nats."),
    balance: z
      .record(z.string(), z.number())
      .nullable()
      .optional()
      .describe("Balance diagnostics of the routing (e.g. 'switch', 'entropy'), whether or not trained on."),
    expert_load: z.array(z.number()).nullable().describe("Share of routing decisions per expert (clean inputs)."),
    expert_load_adv: z.array(z.number()).nullable().describe("The same on the adversarial inputs."),
    grad_norm: z.number().nullable(),
    lr: LearningRates,
    step_time_s: z.number().min(0),
    images_per_s: z.number().nullable(),
    epoch_end: z.boolean().describe("Whether this step ended an epoch."),
    epoch_summary: EpochSummary.optional().describe("The summary of the epoch this step ended."),
  })
  .catchall(ExtraMetric);

/** What the worker reports about a trainer it holds. */
export const TrainerDescription = z
  .object({
    handle: z.string(),
    model: z.string().describe("Handle of the model it trains."),
    data: z.string().nullable().describe("Handle of its data set."),
    method: z.string(),
    phases: z.array(z.string()),
    cycle: z.array(z.string()),
    next_phase: z.string(),
    global_step: z.int(),
    epochs_completed: z.int(),
    steps_per_epoch: z.int(),
    paused: z.boolean(),
    spec: z.record(z.string(), z.unknown()),
  })
  .passthrough();

export const TrainerCreateParams = z
  .object({
    model: z.string().describe("A model handle."),
    data: z.string().describe("A data set handle; its train split is trained on, its val split evaluated."),
    spec: TrainerSpec,
  })
  .strict();
export const TrainerHandleParams = z.object({ handle: z.string().describe("A trainer handle.") }).strict();
export const TrainerStepParams = z
  .object({
    handle: z.string().describe("A trainer handle."),
    phase: z
      .string()
      .optional()
      .describe("Phase to run (advmoe: 'router' or 'expert'); default: the next in the cycle."),
  })
  .strict();
export const TrainerRunParams = z
  .object({
    handle: z.string().describe("A trainer handle."),
    epochs: z.int().min(0).optional().describe("Epochs to run; default: up to the spec's `epochs`."),
  })
  .strict();
export const TrainerRunResult = z
  .object({
    stopped: z.boolean().optional().describe("Whether the run was cut short (a cancelled run rejects instead)."),
    epochs: z.array(EpochSummary).describe("One summary per completed epoch."),
    epochs_completed: z.int().min(0),
  })
  .strict();
export const TrainerSetParams = z
  .object({
    handle: z.string().describe("A trainer handle."),
    changes: z
      .record(z.string(), z.union([z.number(), z.boolean(), z.null()]))
      .describe(
        "Hyperparameters to change between steps, e.g. { lr: 0.01, eps: 0.03 }; all checked before any applies.",
      ),
  })
  .strict();
export const TrainerSaveParams = z
  .object({
    handle: z.string().describe("A trainer handle."),
    path: z.string().min(1).describe("Checkpoint path on the worker, inside its workspace root."),
  })
  .strict();
export const TrainerSaveResult = z.object({ path: z.string(), bytes: z.int() }).strict();
export const TrainerResumeParams = z
  .object({
    path: z.string().min(1).describe("A trainer checkpoint inside the worker's workspace root."),
    model: z.string().optional().describe("Model handle to load the state into; default: rebuilt from the checkpoint."),
    data: z.string().optional().describe("Data set handle; default: rebuilt from the checkpoint's data spec."),
  })
  .strict();
