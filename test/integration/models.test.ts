import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "../../ts/client/model.js";
import { type SpawnedWorker, spawnWorker } from "../../ts/launcher/spawn.js";
import {
  BadCheckpointError,
  BadTensorError,
  ForbiddenPathError,
  InvalidSpecError,
  NotFoundError,
} from "../../ts/protocol/errors.js";
import { type Tensor, tensor } from "../../ts/protocol/tensor.js";
import type { ModelSpec } from "../../ts/schemas/model.js";
import { TRANSPORTS } from "./transports.js";

const SMALL_MOE: ModelSpec = {
  arch: "resnet18",
  width: 0.125,
  ratio: 0.5,
  input_size: 16,
  num_classes: 4,
  seed: 7,
  moe: { experts: 2 },
};

function images(n: number, c = 3, size = 16): Tensor<"float32"> {
  let state = 1;
  const data = Float32Array.from({ length: n * c * size * size }, () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  });
  return tensor(data, [n, c, size, size]);
}

describe.each(TRANSPORTS)("models through the wire with %s", (transport) => {
  let worker: SpawnedWorker;
  let workspace: string;
  let model: Model;
  beforeAll(async () => {
    workspace = mkdtempSync(join(tmpdir(), "advmoe-models-"));
    worker = await spawnWorker({ workspace, threads: 1, transport });
    model = await worker.createModel(SMALL_MOE);
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("creates and describes an MoE model with its costs", async () => {
    const info = await model.describe();
    expect(info).toMatchObject({ arch: "resnet18", is_moe: true, experts: 2, ratio: 0.5, router: "image" });
    expect(info.execution).toBe("sparse");
    expect(info.routing_layers).toBe(1);
    expect(info.moe_layers).toBeGreaterThan(0);
    expect(info.params.router).toBeGreaterThan(0);
    expect(info.params.total).toBe(info.params.router + info.params.backbone);
    expect(info.macs.active).toBeLessThan(info.macs.masked);
    expect(info.macs.active).toBeLessThan(info.macs.dense);
    expect(info.spec.moe?.execution).toBe("sparse"); // defaults filled by the worker
    expect((await worker.objects("model")).map((o) => o.handle)).toContain(model.handle);
  });

  it("predicts logits, routes and router scores for a tensor made in TS", async () => {
    const x = images(6);
    const out = await model.predict(x, { batch_size: 4 });
    expect(out.logits.shape).toEqual([6, 4]);
    expect(out.routes?.shape).toEqual([6, 1]);
    expect(out.scores?.shape).toEqual([6, 1, 2]);
    expect(out.samples).toBe(6);
    expect(out.routing?.histogram[0]?.reduce((a, b) => a + b, 0)).toBe(6);
    for (const v of out.logits.data) expect(Number.isFinite(v)).toBe(true);
    for (const r of out.routes!.data) expect([0n, 1n]).toContain(r);
  });

  it("gives the same predictions on the masked and the sparse path", async () => {
    const x = images(5);
    const sparse = await model.predict(x);
    await model.configure({ execution: "masked" });
    const masked = await model.predict(x);
    await model.configure({ execution: "sparse" });
    expect(Array.from(masked.routes!.data)).toEqual(Array.from(sparse.routes!.data));
    sparse.logits.data.forEach((v, i) => {
      expect(masked.logits.data[i]).toBeCloseTo(v, 4);
    });
  });

  it("saves and loads with bit-exact predictions after reload", async () => {
    const saved = await model.save("ckpt/moe.pt");
    expect(saved.path).toBe(join(workspace, "ckpt/moe.pt"));
    const loaded = await worker.loadModel("ckpt/moe.pt");
    expect(loaded.handle).not.toBe(model.handle);
    expect(loaded.info.spec).toEqual(model.info.spec);
    const x = images(3);
    const [a, b] = [await model.predict(x), await loaded.predict(x)];
    expect(Buffer.from(b.logits.data.buffer, b.logits.data.byteOffset, b.logits.data.byteLength)).toEqual(
      Buffer.from(a.logits.data.buffer, a.logits.data.byteOffset, a.logits.data.byteLength),
    );
  });

  it("builds dense models and per-layer routers too", async () => {
    const dense = await worker.createModel({ arch: "vgg16_bn", width: 0.125, input_size: 16, num_classes: 3 });
    expect(dense.info.is_moe).toBe(false);
    expect((await dense.predict(images(2))).routes).toBeUndefined();
    const layered = await worker.createModel({ ...SMALL_MOE, moe: { experts: 3, router: "layer" } });
    const out = await layered.predict(images(2));
    expect(out.routes!.shape).toEqual([2, layered.info.routing_layers]);
    expect(layered.info.routing_layers).toBe(layered.info.moe_layers);
  });

  describe("bad input gets a typed error naming the field", () => {
    it("unknown arch lists the known ones", async () => {
      const err = await worker.createModel({ arch: "resnet19" } as never, { validate: false }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidSpecError);
      expect(err.path).toBe("spec.arch");
      expect(err.message).toContain("resnet18");
    });

    it("r outside (0, 1] and E < 1", async () => {
      for (const [spec, path] of [
        [{ ...SMALL_MOE, ratio: 0 }, "spec.ratio"],
        [{ ...SMALL_MOE, ratio: 1.5 }, "spec.ratio"],
        [{ ...SMALL_MOE, moe: { experts: 0 } }, "spec.moe.experts"],
      ] as const) {
        const err = await worker.createModel(spec, { validate: false }).catch((e) => e);
        expect(err).toBeInstanceOf(InvalidSpecError);
        expect(err.path).toBe(path);
      }
    });

    it("an input too small for the arch", async () => {
      const err = await worker.createModel({ ...SMALL_MOE, arch: "resnet50_imagenet", input_size: 4 }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidSpecError);
      expect(err.path).toBe("spec.input_size");
    });

    it("a predict tensor of the wrong shape or dtype", async () => {
      const wrongShape = await model.predict(images(2, 1)).catch((e) => e);
      expect(wrongShape).toBeInstanceOf(BadTensorError);
      expect(wrongShape.message).toMatch(/shape must be \[B, 3, 16, 16\]/);
      const ints = tensor(new Int32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
      expect(await model.predict(ints).catch((e) => e)).toBeInstanceOf(BadTensorError);
    });

    it("an unknown model handle", async () => {
      const err = await worker.request("model.describe", { handle: "model:999" }).catch((e) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.known).toContain(model.handle);
    });

    it("a checkpoint path outside the workspace", async () => {
      for (const path of ["../escape.pt", "/etc/advmoe.pt"]) {
        const err = await model.save(path).catch((e) => e);
        expect(err).toBeInstanceOf(ForbiddenPathError);
        expect(err.details.path).toBe("path");
      }
      expect(await worker.loadModel("../../etc/passwd").catch((e) => e)).toBeInstanceOf(ForbiddenPathError);
    });

    it("a corrupted or truncated checkpoint file", async () => {
      await model.save("ckpt/good.pt");
      const good = readFileSync(join(workspace, "ckpt/good.pt"));
      writeFileSync(join(workspace, "ckpt/truncated.pt"), good.subarray(0, good.length >> 1));
      const flipped = Buffer.from(good);
      flipped.fill(0x5a, 64, 4096);
      writeFileSync(join(workspace, "ckpt/corrupt.pt"), flipped);
      writeFileSync(join(workspace, "ckpt/text.pt"), "not a checkpoint");
      for (const name of ["truncated", "corrupt", "text"]) {
        expect(await worker.loadModel(`ckpt/${name}.pt`).catch((e) => e), name).toBeInstanceOf(BadCheckpointError);
      }
      expect((await worker.info()).pid).toBe(worker.pid);
    });
  });
});
