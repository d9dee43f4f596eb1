// Evaluation specs and reports: which attacks to run, and every number they produced.
import { z } from "zod";
import { AttackRequestSpec, AttackSpec, AUTOATTACK_VERSIONS, AutoAttackSpec } from "./attack.js";
import { MacCounts, ParamCounts, RoutingStats } from "./model.js";

/** Share of samples above which one expert counts as taking over a routing layer. */
export const MaxShare = z.number().gt(0).max(1).default(0.9);

/** What to measure on a data split: clean accuracy, attacks, AutoAttack, routing metrics. */
export const EvaluationSpec = z
  .object({
    attacks: z
      .array(AttackSpec)
      .default([
        {
          name: "pgd",
          norm: "linf",
          eps: null,
          steps: 10,
          step_size: null,
          random_start: true,
          restarts: 1,
          seed: null,
        },
      ])
      .describe(
        "Attacks to run on every batch; routing attacks (router, pathway, official) are skipped with a warning on dense models (default: one PGD-10, linf, 8/255, step 2/255, random start).",
      ),
    autoattack: AutoAttackSpec.nullable()
      .default(null)
      .describe("AutoAttack settings, or null to skip it (default null)."),
    batch_size: z.int().min(1).default(128).describe("Samples per attacked batch (default 128)."),
    max_samples: z
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe("Evaluate the first N samples of the split only; null: all (default null)."),
    per_class: z.boolean().default(true).describe("Report accuracy per class, clean and per attack (default true)."),
    max_share: MaxShare.describe(
      "A 'routing_collapse' warning is raised when one expert takes more than this share of a routing layer's samples, clean or adversarial (default 0.9).",
    ),
    seed: z
      .int()
      .min(0)
      .default(1234)
      .describe("Seed of attacks whose own seed is null; batch b of an attack uses seed + b (default 1234)."),
  })
  .strict();

const Fraction = z.number().min(0).max(1);

const ClassAccuracy = z
  .object({
    class: z.int().min(0).describe("Class index."),
    samples: z.int().min(0).describe("Samples of this class."),
    correct: z.int().min(0).describe("Of those, correctly classified."),
    accuracy: Fraction.nullable().describe("correct / samples; null when the class has no sample."),
  })
  .strict();

const ExpertLoad = RoutingStats.describe(
  "Expert load over every evaluated sample, per routing layer (histogram, shares, entropy); null for dense models.",
);

const RoutingAgreement = z
  .object({
    overall: Fraction.describe("Share of samples whose expert is unchanged in every routing layer (same pathway)."),
    per_layer: z.array(Fraction).describe("Share of samples whose expert is unchanged, per routing layer."),
  })
  .strict()
  .describe("Clean vs adversarial routing; null for dense models.");

const GradientCounts = z
  .object({
    sample_steps: z.int().min(0).describe("Samples x steps for which an input gradient was taken."),
    zero: z.int().min(0).describe("Of those, all-zero gradients (flat or saturated loss)."),
    non_finite: z.int().min(0).describe("Of those, gradients with NaN or infinite entries (zeroed before the step)."),
  })
  .strict();

/** The exact settings an attack ran with, every default resolved. */
export const AttackSettings = z
  .object({
    name: z.enum(["fgsm", "pgd", "trades", "router", "pathway", "official"]),
    norm: z.enum(["linf", "l2"]),
    eps: z.number().min(0).describe("Budget, in pixel units of `norm`."),
    steps: z.int().min(1),
    step_size: z.number().gt(0).describe("In pixel units of `norm`."),
    restarts: z.int().min(1),
    random_start: z.boolean(),
    seed: z.int().min(0).describe("Seed of batch 0; batch b used seed + b."),
    init_std: z.number().optional().describe("trades only."),
    router_weight: z.number().optional().describe("trades only."),
    beta: z.number().optional().describe("official only."),
  })
  .strict();

const AttackResult = z
  .object({
    label: z.string().describe("Unique readable name, e.g. 'pgd10-linf-8/255'; the key in `summary.ra`."),
    settings: AttackSettings,
    samples: z.int().min(0),
    robust_accuracy: Fraction.describe(
      "RA: share of samples classified correctly both clean and on this attack's example, routing free; <= SA by construction.",
    ),
    frozen_pathway_accuracy: Fraction.nullable().describe(
      "Share of samples correct clean and on these examples with routes pinned to each sample's clean choice; null for dense models.",
    ),
    routing_agreement: RoutingAgreement.nullable(),
    expert_load: ExpertLoad.nullable().describe("Expert load on the adversarial examples; null for dense models."),
    per_class: z.array(ClassAccuracy).nullable().describe("Per-class robust accuracy; null unless `per_class`."),
    gradients: GradientCounts,
    seconds: z.number().min(0).describe("Wall time spent on this attack and its evaluation."),
    images_per_second: z.number().min(0).nullable(),
  })
  .strict();

const AutoAttackResult = z
  .object({
    settings: z
      .object({
        name: z.literal("autoattack"),
        version: z.enum(AUTOATTACK_VERSIONS),
        attacks: z.array(z.string()).describe("The attacks the version chains, in order."),
        norm: z.enum(["linf", "l2"]),
        eps: z.number().min(0),
        seed: z.int().min(0),
        n_classes: z.int().min(2).describe("Classes handed to the targeted attacks (the model's real count)."),
        steps: z.int().min(1),
        n_queries: z.int().min(1),
        target_classes: z.int().min(1),
        library: z.string().describe("The attack library and its version."),
        max_samples: z.int().min(1).nullable(),
      })
      .strict(),
    samples: z.int().min(0),
    clean_accuracy: Fraction.describe("SA on the samples AutoAttack ran on (its `max_samples` subset)."),
    robust_accuracy: Fraction.describe(
      "AA: share of those samples correct clean and on the example AutoAttack returned; <= its clean_accuracy.",
    ),
    worst_case_accuracy: Fraction.describe(
      "Share of those samples robust under AutoAttack and every attack of `attacks` at once.",
    ),
    per_class: z.array(ClassAccuracy).nullable(),
    seconds: z.number().min(0),
    images_per_second: z.number().min(0).nullable(),
  })
  .strict();

const EvaluationWarning = z
  .object({
    code: z
      .enum(["gradient_masking", "routing_collapse", "non_finite_scores", "attack_skipped"])
      .describe(
        "gradient_masking: zero or non-finite input gradients; routing_collapse: one expert takes more than max_share; non_finite_scores: NaN/inf router scores; attack_skipped: a routing attack on a dense model.",
      ),
    message: z.string(),
    attack: z
      .string()
      .nullable()
      .describe("Label (or name, if skipped) of the attack concerned; null for clean inputs."),
    layer: z.int().min(0).optional().describe("routing_collapse: the routing layer."),
    expert: z.int().min(0).optional().describe("routing_collapse: the expert taking the load."),
    share: Fraction.optional().describe("routing_collapse: its share of the samples."),
    threshold: Fraction.optional().describe("routing_collapse: the max_share in force."),
    count: z.int().min(0).optional().describe("non_finite_scores: how many scores."),
  })
  .strict();

const Costs = z
  .object({
    input_size: z.int().min(1).describe("Input height = width the costs were counted at (the evaluated data's)."),
    params: ParamCounts,
    macs: MacCounts,
    macs_per_sample: z.number().min(0).describe("MACs of one inference: active pathway + router."),
  })
  .strict()
  .describe("Parameter counts and MACs per sample; null for models not built by the worker's factory.");

/** Everything `evaluate` measured, each number next to the settings that produced it. */
export const EvaluationReport = z
  .object({
    samples: z.int().min(0).describe("Samples evaluated."),
    num_classes: z.int().min(0),
    model: z.object({ is_moe: z.boolean(), num_experts: z.int().min(1), num_routing_layers: z.int().min(0) }).strict(),
    settings: z
      .object({
        batch_size: z.int().min(1),
        max_samples: z.int().min(1).nullable(),
        per_class: z.boolean(),
        max_share: Fraction,
        seed: z.int().min(0),
        device: z.string().describe("Where the model ran, e.g. 'cpu' or 'cuda:0'."),
      })
      .strict(),
    summary: z
      .object({
        sa: Fraction.describe("Standard (clean) accuracy."),
        ra: z.record(z.string(), Fraction).describe("Robust accuracy per attack label."),
        ra_worst: Fraction.nullable().describe(
          "Per-sample worst case: share of samples correct clean and under every attack of `attacks`; null with no attack.",
        ),
        ra_worst_over: z.array(z.string()).describe("Labels of the attacks ra_worst takes the worst case over."),
        aa: Fraction.nullable().describe("AutoAttack accuracy on its subset; null when not requested."),
        aa_worst: Fraction.nullable().describe(
          "Worst case over AutoAttack and every attack, on AutoAttack's subset; null when not requested.",
        ),
        ra_router: Fraction.nullable().describe("RA under the (first) router attack; null when not run."),
        ra_pathway: Fraction.nullable().describe(
          "Frozen-pathway accuracy under the (first) pathway attack; null when not run.",
        ),
      })
      .strict(),
    clean: z
      .object({
        accuracy: Fraction,
        per_class: z.array(ClassAccuracy).nullable(),
        expert_load: ExpertLoad.nullable(),
        seconds: z.number().min(0),
        images_per_second: z.number().min(0).nullable().describe("Clean inference throughput."),
      })
      .strict(),
    attacks: z.array(AttackResult),
    autoattack: AutoAttackResult.nullable(),
    costs: Costs.nullable(),
    seconds: z.number().min(0).describe("Wall time of the whole evaluation."),
    warnings: z.array(EvaluationWarning),
  })
  .strict();

export type EvaluationSpec = z.input<typeof EvaluationSpec>;
export type ResolvedEvaluationSpec = z.output<typeof EvaluationSpec>;
export type EvaluationReport = z.output<typeof EvaluationReport>;

/** Where evaluation samples come from: a data set split held by the worker, or tensors `x`, `y` sent along. */
export const EvaluateParams = z
  .object({
    model: z.string().describe("A model handle."),
    data: z
      .string()
      .optional()
      .describe("A data set handle; omit to evaluate the tensors `x`, `y` sent with the request."),
    split: z.enum(["train", "val", "test"]).default("test").describe("Split of `data` (default test)."),
    spec: EvaluationSpec.prefault({}).describe("What to measure (default: SA and PGD-10)."),
  })
  .strict();

export const AttackParams = z
  .object({
    model: z.string().describe("A model handle."),
    attack: AttackRequestSpec.describe("The attack and its settings."),
  })
  .strict();
export const AttackCallResult = z
  .object({
    samples: z.int(),
    clean_accuracy: z.number(),
    adversarial_accuracy: z.number(),
    max_perturbation: z.number().describe("Largest per-sample perturbation norm, in the attack's norm."),
    settings: z.record(z.string(), z.unknown()).describe("The attack's full settings."),
  })
  .strict();
