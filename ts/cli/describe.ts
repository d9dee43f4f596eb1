// `advmoe describe CHECKPOINT`: the spec, versions, MACs and training progress a checkpoint holds.

import type { Worker } from "../client/worker.js";
import { BadCheckpointError } from "../protocol/errors.js";
import { toJson } from "./json.js";
import { openWorker, type WorkerFlags } from "./worker.js";

export async function runDescribe(checkpoint: string, flags: WorkerFlags & { json: boolean }): Promise<number> {
  await using worker: Worker = await openWorker(flags, () => undefined);
  const info = await worker.info();
  let out: Record<string, unknown>;
  try {
    const model = await worker.loadModel(checkpoint);
    out = { checkpoint, kind: "model", model: model.info };
  } catch (err) {
    if (!(err instanceof BadCheckpointError) || err.details.reason !== "wrong_format") throw err;
    const { trainer, model } = await worker.resumeTrainer(checkpoint);
    const { handle: _t, model: _m, data: _d, ...training } = trainer.info;
    out = { checkpoint, kind: "trainer", model: model.info, trainer: training };
  }
  out.read_by = { worker: info.worker_version, torch: info.torch, python: info.python, protocol: info.protocol };
  if (flags.json) {
    console.log(toJson(out, 2));
    return 0;
  }
  const model = out.model as {
    arch: string;
    is_moe: boolean;
    experts: number;
    ratio: number;
    params: Record<string, number>;
    macs: Record<string, number>;
    spec: unknown;
  };
  console.log(`${checkpoint}: ${out.kind} checkpoint`);
  console.log(
    `model ${model.arch}${model.is_moe ? ` MoE, ${model.experts} experts of ratio ${model.ratio}` : " dense"}`,
  );
  console.log(`params ${toJson(model.params)}`);
  console.log(`MACs per sample ${toJson(model.macs)}`);
  console.log(`model spec ${toJson(model.spec)}`);
  if (out.trainer) {
    const t = out.trainer as Record<string, unknown>;
    console.log(
      `training: method ${t.method}, ${t.epochs_completed} epochs and ${t.global_step} steps done, next phase ${t.next_phase}, lr ${toJson(t.lr)}`,
    );
    console.log(`trainer spec ${toJson(t.spec)}`);
  }
  const r = out.read_by as Record<string, string>;
  console.log(`read by worker ${r.worker}, torch ${r.torch}, python ${r.python} (protocol ${r.protocol})`);
  return 0;
}
