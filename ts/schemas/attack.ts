// Attack specs: which adversarial attack, in which norm, how strong, how seeded.
import { z } from "zod";

/** Attack names known to the worker's attack registry. */
export const ATTACK_NAMES = ["fgsm", "pgd", "trades", "router", "pathway", "official"] as const;

/** AutoAttack versions: full ensembles and single members. */
export const AUTOATTACK_VERSIONS = [
  "standard",
  "fast",
  "rand",
  "apgd-ce",
  "apgd-dlr",
  "apgd-t",
  "fab-t",
  "square",
] as const;

const Norm = z
  .enum(["linf", "l2"])
  .default("linf")
  .describe("Threat model: 'linf' (L-infinity ball) or 'l2' (L2 ball), in [0,1] pixel units (default 'linf').");

const Eps = z
  .number()
  .min(0)
  .nullable()
  .default(null)
  .describe(
    "Perturbation budget epsilon, in [0,1] pixel units measured in `norm`; null: 8/255 for linf, 0.5 for l2 (default null).",
  );

const Steps = z.int().min(1).default(10).describe("Gradient ascent steps (default 10).");

const StepSize = z
  .number()
  .gt(0)
  .nullable()
  .default(null)
  .describe("Step length per iteration, in pixel units of `norm`; null: 2/255 for linf, 0.1 for l2 (default null).");

const RandomStart = z
  .boolean()
  .default(true)
  .describe("Start from a uniform draw in the epsilon-ball instead of the clean input (default true).");

const Restarts = z
  .int()
  .min(1)
  .default(1)
  .describe("Independent runs; per sample the strongest result is kept (default 1).");

const Seed = z
  .int()
  .min(0)
  .nullable()
  .default(null)
  .describe(
    "Seed of the attack's own random generator (the global RNG is never touched); null: the evaluation's seed, or 0 for a single attack request (default null).",
  );

/** PGD's settings; the routing attacks share them. */
const iterative = {
  norm: Norm,
  eps: Eps,
  steps: Steps,
  step_size: StepSize,
  random_start: RandomStart,
  restarts: Restarts,
  seed: Seed,
};

/** FGSM: one signed-gradient step of size eps (L2: one unit-gradient step of length eps). */
export const FgsmSpec = z
  .object({
    name: z.literal("fgsm").describe("Fast gradient sign method (Goodfellow et al., 2015)."),
    norm: Norm,
    eps: Eps,
    seed: Seed,
  })
  .strict();

/** PGD on the cross-entropy (Madry et al., 2018): the paper's evaluation attack. */
export const PgdSpec = z
  .object({
    name: z
      .literal("pgd")
      .describe("Projected gradient descent on CE(f(x'), y); defaults: linf, 8/255, 10 steps of 2/255, random start."),
    ...iterative,
  })
  .strict();

/** The TRADES inner maximization: ascend KL(f(x) || f(x')) from x + init_std * N(0, 1). */
export const TradesSpec = z
  .object({
    name: z.literal("trades").describe("TRADES KL attack (Zhang et al., 2019), the attack TRADES training uses."),
    norm: z
      .enum(["linf"])
      .default("linf")
      .describe("Threat model: only 'linf' (as in TRADES and the paper's code) (default 'linf')."),
    eps: Eps,
    steps: Steps,
    step_size: StepSize,
    restarts: Restarts,
    seed: Seed,
    init_std: z
      .number()
      .min(0)
      .default(0.001)
      .describe("Std of the Gaussian start around x, in pixel units (default 0.001)."),
    router_weight: z
      .number()
      .min(0)
      .default(0)
      .describe(
        "Weight of KL(R(x) || R(x')) on the router's softmax (MoE only; the paper's code uses 1 for its expert step) (default 0).",
      ),
  })
  .strict();

/** Router-targeted PGD: push each routing decision away from the clean choice; experts untouched. */
export const RouterAttackSpec = z
  .object({
    name: z
      .literal("router")
      .describe(
        "Router attack: maximize CE(router logits, clean routes), moving samples off their pathway (MoE only).",
      ),
    ...iterative,
  })
  .strict();

/** Frozen-pathway PGD: routes pinned to the clean choice, CE maximized through that pathway. */
export const PathwayAttackSpec = z
  .object({
    name: z
      .literal("pathway")
      .describe("Pathway attack: routing frozen to the clean choice, CE maximized through it (MoE only)."),
    ...iterative,
  })
  .strict();

/** The paper code's evaluation loss CE(f(x'), y) + beta * CE(R(x'), y mod E); not comparable with plain PGD. */
export const OfficialAttackSpec = z
  .object({
    name: z
      .literal("official")
      .describe("PGD on CE(f(x'), y) + beta * CE(R(x'), y mod E), as the paper's code evaluates (MoE only)."),
    ...iterative,
    beta: z.number().min(0).default(6).describe("Weight of the router term (default 6, as the paper's code)."),
  })
  .strict();

/** One attack, chosen by `name`. */
export const AttackSpec = z.discriminatedUnion("name", [
  FgsmSpec,
  PgdSpec,
  TradesSpec,
  RouterAttackSpec,
  PathwayAttackSpec,
  OfficialAttackSpec,
]);

const autoAttackFields = {
  version: z
    .enum(AUTOATTACK_VERSIONS)
    .default("standard")
    .describe(
      "'standard' (APGD-CE, APGD-T, FAB-T, Square), 'fast' (APGD-CE, APGD-T), 'rand' (APGD-CE, APGD-DLR with 20-draw EOT), or one attack alone (default 'standard').",
    ),
  norm: Norm,
  eps: Eps,
  seed: Seed,
  n_classes: z
    .int()
    .min(2)
    .nullable()
    .default(null)
    .describe("Number of classes; null: read from the model's output (default null)."),
  steps: z.int().min(1).default(100).describe("Iterations of APGD, APGD-T and FAB-T (default 100, AutoAttack's own)."),
  n_queries: z.int().min(1).default(5000).describe("Query budget of Square (default 5000)."),
  target_classes: z
    .int()
    .min(1)
    .default(9)
    .describe("How many of the most likely wrong classes APGD-T and FAB-T target (default 9; capped at classes - 1)."),
};

/** AutoAttack (Croce & Hein, 2020) from the torchattacks library, as part of an evaluation. */
export const AutoAttackSpec = z
  .object({
    ...autoAttackFields,
    max_samples: z
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe("Run AutoAttack on the first N evaluated samples only; null: all of them (default null)."),
  })
  .strict()
  .describe("AutoAttack settings, or null to skip it.");

/** AutoAttack on one batch (`attack` requests): the same settings, named 'autoattack'. */
export const AutoAttackRequestSpec = z
  .object({
    name: z.literal("autoattack").describe("AutoAttack from torchattacks."),
    ...autoAttackFields,
  })
  .strict();

/** What a single-batch attack request accepts: any registered attack or AutoAttack. */
export const AttackRequestSpec = z.discriminatedUnion("name", [
  FgsmSpec,
  PgdSpec,
  TradesSpec,
  RouterAttackSpec,
  PathwayAttackSpec,
  OfficialAttackSpec,
  AutoAttackRequestSpec,
]);

export type AttackSpec = z.input<typeof AttackSpec>;
export type ResolvedAttackSpec = z.output<typeof AttackSpec>;
export type AutoAttackSpec = z.input<typeof AutoAttackSpec>;
export type AttackRequestSpec = z.input<typeof AttackRequestSpec>;
