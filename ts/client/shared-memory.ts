// Tensors through shared memory for a local worker: a file per tensor in a private
// folder under /dev/shm, announced in the signed header with a MAC of its bytes
// (docs/protocol.md, Shared memory; py/advmoe_worker/protocol/shm.py is the other side).
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rm,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { SegmentRef } from "../protocol/codec.js";

/** How segment bytes are authenticated: AES-GMAC (fast where OpenSSL serves it) or HMAC-SHA256. */
export type SegmentMac = SegmentRef["mac"];

/** Why a segment was refused. */
export class SegmentError extends Error {
  constructor(
    message: string,
    readonly rule: "shm_name" | "shm_missing" | "shm_private" | "shm_length" | "shm_mac",
  ) {
    super(message);
  }
}

export interface SharedMemoryOptions {
  /**
   * Smallest tensor, in bytes, that a request sends through a segment. Default 128 MiB:
   * below that, frames were faster on the machine BENCHMARKS.md was measured on.
   */
  minBytes?: number;
  /**
   * Smallest reply or event tensor the worker sends through a segment. Default: none,
   * replies travel as frames (a reply frame has no size limit, and frames were faster
   * for downloads at every size measured in BENCHMARKS.md).
   */
  replyMinBytes?: number;
  /** Default: AES-GMAC under Node, HMAC-SHA256 under Deno (whose GMAC is slow). */
  mac?: SegmentMac;
  /** Where the folder is made. Default /dev/shm. */
  root?: string;
}

const ROOT = "/dev/shm";
const DEFAULT_MIN_BYTES = 128 * 2 ** 20;
const PREFIX = "advmoe-";
const NAME = /^[0-9a-f]{32}$/;
const KEY_LABEL = "advmoe shared memory v1";
const CHUNK = 1 << 30;
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

/**
 * A private folder shared with one local worker. Create it with `SharedMemory.create`
 * (or let `spawnWorker` do it); `destroy()` removes it and everything in it.
 */
export class SharedMemory {
  readonly dir: string;
  readonly minBytes: number;
  readonly replyMinBytes?: number;
  readonly mac: SegmentMac;
  readonly #key: Buffer;
  readonly #removing = new Set<Promise<void>>();

  constructor(dir: string, signingKey: Uint8Array, options: SharedMemoryOptions = {}) {
    this.dir = dir;
    this.minBytes = options.minBytes ?? DEFAULT_MIN_BYTES;
    this.replyMinBytes = options.replyMinBytes;
    for (const [field, value] of [
      ["minBytes", this.minBytes],
      ["replyMinBytes", this.replyMinBytes ?? 1],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`sharedMemory.${field} must be an integer >= 1, got ${value}`);
      }
    }
    this.mac = options.mac ?? (isDeno ? "hmac-sha256" : "aes-256-gmac");
    this.#key = createHmac("sha256", signingKey).update(KEY_LABEL).digest();
  }

  /**
   * Makes a fresh private folder (mode 0700, an unguessable name that carries this
   * process's pid, so `sweepStale` can tell a dead owner's folder), or returns
   * undefined where /dev/shm is missing or out of reach (then tensors travel as frames):
   * Deno lets a program into /dev only with --allow-all.
   */
  static create(signingKey: Uint8Array, options: SharedMemoryOptions = {}): SharedMemory | undefined {
    const root = options.root ?? ROOT;
    try {
      if (!existsSync(root)) return undefined;
    } catch {
      return undefined; // Deno's NotCapable
    }
    sweepStale(root);
    const dir = mkdtempSync(join(root, `${PREFIX}${process.pid}-`)); // mode 0700
    return new SharedMemory(dir, signingKey, options);
  }

  /** True for tensors that go through a segment rather than a frame. */
  wants(bytes: Uint8Array): boolean {
    return bytes.byteLength >= this.minBytes;
  }

  /** Writes `bytes` to a fresh segment (mode 0600, created exclusively). */
  write(bytes: Uint8Array): SegmentRef {
    const name = randomBytes(16).toString("hex");
    const path = join(this.dir, name);
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for (let done = 0; done < bytes.byteLength; ) {
        done += writeSync(fd, bytes, done, Math.min(CHUNK, bytes.byteLength - done));
      }
    } catch (err) {
      closeSync(fd);
      this.remove(name);
      throw err;
    }
    closeSync(fd);
    const nonce = this.mac === "aes-256-gmac" ? randomBytes(12) : new Uint8Array();
    return { name, bytes: bytes.byteLength, mac: this.mac, nonce, tag: this.#tag(this.mac, nonce, bytes) };
  }

  /** Reads and checks a segment the worker announced, then removes it. */
  read(ref: SegmentRef, expected: number): Uint8Array {
    if (typeof ref?.name !== "string" || !NAME.test(ref.name)) {
      throw new SegmentError("shm.name must be 32 lowercase hex digits", "shm_name");
    }
    if (ref.bytes !== expected || expected === 0) {
      throw new SegmentError(
        `segment ${ref.name}: shm.bytes is ${ref.bytes}, the dtype and shape need ${expected}`,
        "shm_length",
      );
    }
    const path = join(this.dir, ref.name);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new SegmentError(`segment ${ref.name} cannot be opened: ${(err as Error).message}`, "shm_missing");
    }
    let out: Buffer;
    try {
      const info = fstatSync(fd);
      const uid = process.getuid?.();
      if (!info.isFile() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
        throw new SegmentError(`segment ${ref.name} is not a private regular file of this user`, "shm_private");
      }
      if (info.size !== expected) {
        throw new SegmentError(
          `segment ${ref.name} holds ${info.size} bytes, the header says ${expected}`,
          "shm_length",
        );
      }
      // Not from the pool: a typed array over it must start aligned.
      out = Buffer.allocUnsafeSlow(expected);
      for (let done = 0; done < expected; ) {
        const n = readSync(fd, out, done, Math.min(CHUNK, expected - done), done);
        if (n === 0) throw new SegmentError(`segment ${ref.name} ended early`, "shm_length");
        done += n;
      }
    } finally {
      closeSync(fd);
      this.remove(ref.name);
    }
    const tag =
      ref.mac === "aes-256-gmac" || ref.mac === "hmac-sha256" ? this.#tag(ref.mac, ref.nonce, out) : undefined;
    if (!tag || !ref.tag || !equal(tag, ref.tag)) {
      throw new SegmentError(`segment ${ref.name} does not match its MAC (changed after it was announced)`, "shm_mac");
    }
    return out;
  }

  /**
   * Removes a segment, if it is still there and `name` is a segment name. In the background: freeing 64 MiB of
   * /dev/shm takes about 10 ms that no call needs to wait for.
   */
  remove(name: string): void {
    if (!NAME.test(name)) return; // only names this protocol makes: never a path
    const done = new Promise<void>((resolve) => rm(join(this.dir, name), { force: true }, () => resolve()));
    this.#removing.add(done);
    done.then(() => this.#removing.delete(done));
  }

  /** Resolves once every removal started so far has finished. */
  async removed(): Promise<void> {
    await Promise.all(this.#removing);
  }

  /** Removes the folder and every segment left in it. Idempotent. */
  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  #tag(mac: SegmentMac, nonce: Uint8Array, bytes: Uint8Array): Buffer {
    if (mac === "hmac-sha256") {
      const h = createHmac("sha256", this.#key);
      for (let at = 0; at < bytes.byteLength; at += CHUNK) h.update(bytes.subarray(at, at + CHUNK));
      return h.digest();
    }
    if (nonce?.byteLength !== 12) return Buffer.alloc(0);
    // GMAC: AES-GCM over no plaintext with the bytes as associated data; its tag is the MAC.
    const gcm = createCipheriv("aes-256-gcm", this.#key, nonce);
    gcm.setAAD(bytes);
    gcm.final();
    return gcm.getAuthTag();
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/**
 * Removes this user's segment folders under `root` whose owning process is gone: what a
 * client and worker killed together (SIGKILL) leave behind. Returns the folders removed.
 */
export function sweepStale(root = ROOT): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const match = /^advmoe-(\d+)-/.exec(name);
    if (!match) continue;
    const path = join(root, name);
    try {
      const info = statSync(path);
      if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) continue;
    } catch {
      continue;
    }
    if (alive(Number(match[1]))) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid belongs to another user's process, so it is alive.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
