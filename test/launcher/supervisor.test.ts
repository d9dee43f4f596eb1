import { describe, expect, it } from "vitest";
import { spawnWorker } from "../../ts/launcher/spawn.js";
import type { SupervisedWorker } from "../../ts/launcher/supervisor.js";
import { InvalidSpecError, StaleHandleError, WorkerDiedError } from "../../ts/protocol/errors.js";
import { GaveUpEvent, RestartEvent, type SupervisorEvent, type SupervisorEventData } from "../../ts/schemas/events.js";

const DATA = { kind: "synthetic", num_classes: 3, size: 8, channels: 3, train_size: 16, test_size: 8 } as const;

function next<K extends SupervisorEvent["event"]>(worker: SupervisedWorker, kind: K): Promise<SupervisorEventData<K>> {
  return new Promise((resolve) => {
    const off = worker.on(kind, (data) => {
      off();
      resolve(data);
    });
  });
}

describe("a supervised worker", () => {
  it("refuses a restart budget that is not an integer >= 0, naming the field", async () => {
    const err = await spawnWorker({ restart: { maxRestarts: -1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidSpecError);
    expect(err.path).toBe("restart.maxRestarts");
    const slow = await spawnWorker({ restart: { maxRestarts: 1, backoffMs: -5 } }).catch((e) => e);
    expect(slow).toBeInstanceOf(InvalidSpecError);
    expect(slow.path).toBe("restart.backoffMs");
  });

  it("respawns a killed worker within its budget, marks old handles stale, then gives up", async () => {
    await using worker = await spawnWorker({ threads: 1, restart: { maxRestarts: 1, backoffMs: 0 } });
    const events: SupervisorEvent[] = [];
    const iterated = (async () => {
      for await (const event of worker.events()) events.push(event);
    })();
    const data = await worker.createDataset(DATA);
    const firstPid = worker.pid;

    const restarted = next(worker, "restart");
    worker.kill("SIGKILL");
    const restart = await restarted;
    expect(RestartEvent.parse(restart)).toEqual(restart);
    expect(restart).toMatchObject({ attempt: 1, restarts_left: 0, generation: 1, signal: "SIGKILL", exit_code: null });
    expect(worker.generation).toBe(1);
    expect(restart.pid).toBe(worker.pid);
    expect(worker.pid).not.toBe(firstPid);
    expect((await worker.info()).pid).toBe(worker.pid);

    // The data set died with the first process: its handle is refused before anything is sent.
    const stale = await data.describe().catch((e) => e);
    expect(stale).toBeInstanceOf(StaleHandleError);
    expect(stale.code).toBe("stale_handle");
    expect(stale.handle).toBe(data.handle);
    expect(stale.details).toMatchObject({ generation: 0, current: 1 });
    expect(await worker.evaluate({ handle: "m", generation: 0 } as never, data).catch((e) => e)).toBeInstanceOf(
      StaleHandleError,
    );
    const fresh = await worker.createDataset(DATA);
    expect(fresh.generation).toBe(1);
    expect((await fresh.describe()).handle).toBe(fresh.handle);

    const gaveUp = next(worker, "gave_up");
    worker.kill("SIGKILL");
    const end = await gaveUp;
    expect(GaveUpEvent.parse(end)).toEqual(end);
    expect(end).toMatchObject({ restarts: 1, max_restarts: 1, signal: "SIGKILL" });
    expect(await worker.info().catch((e) => e)).toBeInstanceOf(WorkerDiedError);
    const waited = await worker.waitForRestart(1).catch((e) => e);
    expect(waited).toBeInstanceOf(WorkerDiedError);
    expect(waited.message).toMatch(/gave up after 1 of 1 restarts/);
    await iterated;
    expect(events.map((e) => e.event)).toEqual(["restart", "gave_up"]);
  });

  it("does not restart a worker that shut down on request", async () => {
    const worker = await spawnWorker({ threads: 1, restart: { maxRestarts: 2, backoffMs: 0 } });
    const events: string[] = [];
    worker.on("restart", () => events.push("restart"));
    worker.on("gave_up", () => events.push("gave_up"));
    await worker.shutdown();
    expect(await worker.exited).toEqual({ exitCode: 0, signal: null });
    await worker.close();
    expect(events).toEqual([]);
    expect(worker.generation).toBe(0);
  });
});
