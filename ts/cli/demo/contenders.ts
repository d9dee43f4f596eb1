// The main job's contenders: the same ResNet-18 on digits, dense, small-dense and MoE,
// each with the method that trains it, and the evaluation every one of them gets.
import type { EvaluationSpec } from "../../schemas/evaluation.js";
import type { ModelSpec } from "../../schemas/model.js";
import type { TrainerSpec } from "../../schemas/trainer.js";

/** One contender: a model and the method that trains it. */
export interface Contender {
  /** Short stable key, e.g. "advmoe". */
  key: string;
  /** Readable name for tables and charts. */
  name: string;
  /** Why it is in the table. */
  role: string;
  model: ModelSpec;
  trainer: TrainerSpec;
}

/** Settings shared by every contender of one main-job run. */
export interface JobSettings {
  /** L∞ budget of training and evaluation attacks, in [0, 1] pixel units. */
  eps: number;
  epochs: number;
  /** Samples AutoAttack runs on (the first of the test split). */
  autoattackSamples: number;
  /** Test samples evaluated; null = the whole test split. */
  testSamples: number | null;
}

/**
 * ε = 0.15 on 16×16 digits: where a dense ResNet-18 trained with TRADES for 10 epochs
 * keeps a robust accuracy well inside (40%, 85%), so differences between methods show;
 * at 8/255 every model sits near 100% and the table says nothing.
 */
export const DEFAULT_SETTINGS: JobSettings = { eps: 0.15, epochs: 10, autoattackSamples: 64, testSamples: null };

export const QUICK_SETTINGS: JobSettings = { eps: 0.15, epochs: 1, autoattackSamples: 16, testSamples: 64 };

/** The contenders, trained with `seed` (model initialization, data order, attacks). */
export function contenders(settings: JobSettings, seed: number): Contender[] {
  const { eps, epochs } = settings;
  // ResNet-18 (CIFAR stem) at a width that trains in minutes on two cores. MoE: E = 2
  // experts of ratio 0.5, the router scaled with the backbone; S-Dense: the dense model
  // at ratio 0.5, the same active width as one MoE pathway.
  const base: ModelSpec = {
    arch: "resnet18",
    width: 0.25,
    in_channels: 1,
    input_size: 16,
    num_classes: 10,
    seed: 1 + seed,
  };
  const moe: ModelSpec = { ...base, ratio: 0.5, moe: { experts: 2 } };
  const common: TrainerSpec = {
    method: "trades",
    epochs,
    batch_size: 64,
    attack: { eps, steps: 3, step_size: eps / 4 },
    optimizer: { name: "sgd", lr: 0.05 },
    schedule: { name: "cosine" },
    seed: 1234 + seed,
    checkpoint_every_epochs: null,
    // robust accuracy on the validation split after every epoch, for the curves
    eval: { attacks: [{ name: "pgd", eps, steps: 10, step_size: eps / 4, seed: 0 }], batch_size: 256, seed: 0 },
  };
  return [
    {
      key: "dense",
      name: "Dense TRADES",
      role: "the full-width CNN: the robustness the MoE should match at a fraction of the cost",
      model: base,
      trainer: { ...common, method: "trades" },
    },
    {
      key: "sdense",
      name: "S-Dense TRADES",
      role: "the dense CNN at ratio 0.5: the cost of one MoE pathway",
      model: { ...base, ratio: 0.5 },
      trainer: { ...common, method: "trades" },
    },
    {
      key: "at-moe",
      name: "AT (MoE)",
      role: "plain adversarial training of router and experts together, the paper's weak baseline",
      model: moe,
      trainer: { ...common, method: "at-moe" },
    },
    {
      key: "advmoe",
      name: "AdvMoE",
      role: "router/expert alternation with the SDK's defaults (router supervised towards y mod E)",
      model: moe,
      trainer: { ...common, method: "advmoe" },
    },
    {
      key: "advmoe-paper",
      name: "AdvMoE, paper router objective",
      role: "the router trained only on α·CE(R(x), y mod E) + β·KL(R(x) ‖ R(x′)), as the paper code does",
      model: moe,
      trainer: { ...common, method: "advmoe", router_supervision: "paper" },
    },
    {
      key: "advmoe-none",
      name: "AdvMoE, no router supervision",
      role: "the robust loss alone on the router: shows why supervision is the default",
      model: moe,
      trainer: { ...common, method: "advmoe", router_supervision: "none" },
    },
  ];
}

/** The final evaluation: PGD-20 on every model, and for MoE models the routing attacks. */
export function evaluation(settings: JobSettings): EvaluationSpec {
  const { eps } = settings;
  return {
    attacks: [
      { name: "pgd", norm: "linf", eps, steps: 20, step_size: eps / 8, random_start: true, seed: 0 },
      // the paper code's RA attack: CE of the model plus β·CE of the router to y mod E
      { name: "official", eps, steps: 20, step_size: eps / 8, seed: 0 },
      { name: "router", eps, steps: 20, step_size: eps / 8, seed: 0 },
      { name: "pathway", eps, steps: 20, step_size: eps / 8, seed: 0 },
    ],
    // The standard ensemble (APGD-CE, APGD-T, FAB-T, Square) with a CPU-sized budget:
    // 3 target classes instead of 9 and 1,000 Square queries instead of 5,000.
    autoattack: {
      version: "standard",
      eps,
      max_samples: settings.autoattackSamples,
      target_classes: 3,
      n_queries: 1000,
      seed: 0,
    },
    batch_size: 128,
    max_samples: settings.testSamples,
    per_class: true,
    seed: 0,
  };
}
