// ZMTP 3.1 handshake pieces (rfc.zeromq.org/spec/37): the greeting and the READY/ERROR/PING commands.

/** Bytes of a ZMTP 3.x greeting. */
export const GREETING_BYTES = 64;

const ascii = new TextEncoder();
const text = new TextDecoder();

/**
 * Our greeting: signature 0xFF, eight zero bytes, 0x7F; version 3.1; mechanism NULL,
 * zero-padded to 20 bytes; as-server 0 (a connecting DEALER is the client); 31 zero
 * filler bytes. libzmq peers stall on a non-zero pad or an as-server 1 from a client.
 */
export function encodeGreeting(): Uint8Array {
  const greeting = new Uint8Array(GREETING_BYTES);
  greeting[0] = 0xff;
  greeting[9] = 0x7f;
  greeting[10] = 3;
  greeting[11] = 1;
  greeting.set(ascii.encode("NULL"), 12);
  greeting[32] = 0; // as-server
  return greeting;
}

/** What a peer's greeting says. */
export interface Greeting {
  major: number;
  minor: number;
  mechanism: string;
  asServer: boolean;
}

/** Parses a peer's 64-byte greeting; undefined when the signature is not ZMTP's. */
export function parseGreeting(bytes: Uint8Array): Greeting | undefined {
  if (bytes.length < GREETING_BYTES || bytes[0] !== 0xff || bytes[9] !== 0x7f) return undefined;
  const mechanism = bytes.subarray(12, 32);
  const end = mechanism.indexOf(0);
  return {
    major: bytes[10]!,
    minor: bytes[11]!,
    mechanism: text.decode(end < 0 ? mechanism : mechanism.subarray(0, end)),
    asServer: bytes[32] === 1,
  };
}

/** A command frame's body: a name (length byte + ASCII) and the data after it. */
export interface Command {
  name: string;
  data: Uint8Array;
}

/** Builds a command body: name length byte, name, data. */
export function encodeCommand(name: string, data: Uint8Array = new Uint8Array()): Uint8Array {
  const nameBytes = ascii.encode(name);
  const body = new Uint8Array(1 + nameBytes.length + data.length);
  body[0] = nameBytes.length;
  body.set(nameBytes, 1);
  body.set(data, 1 + nameBytes.length);
  return body;
}

/** Splits a command body into name and data; undefined when the name length overruns it. */
export function parseCommand(body: Uint8Array): Command | undefined {
  const length = body[0];
  if (length === undefined || 1 + length > body.length) return undefined;
  return { name: text.decode(body.subarray(1, 1 + length)), data: body.subarray(1 + length) };
}

/**
 * READY's metadata: each property is a name length byte, the name, a 4-byte big-endian
 * value length and the value. A DEALER sends only `Socket-Type`.
 */
export function encodeReady(properties: Record<string, string>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, value] of Object.entries(properties)) {
    const n = ascii.encode(name);
    const v = ascii.encode(value);
    const part = new Uint8Array(1 + n.length + 4 + v.length);
    part[0] = n.length;
    part.set(n, 1);
    new DataView(part.buffer).setUint32(1 + n.length, v.length);
    part.set(v, 1 + n.length + 4);
    parts.push(part);
  }
  const data = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  return encodeCommand("READY", data);
}

/** Parses READY's metadata (names are case-insensitive in ZMTP: returned lower-cased). */
export function parseReadyProperties(data: Uint8Array): Record<string, string> | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const nameLength = data[offset]!;
    if (offset + 1 + nameLength + 4 > data.length) return undefined;
    const name = text.decode(data.subarray(offset + 1, offset + 1 + nameLength)).toLowerCase();
    offset += 1 + nameLength;
    const valueLength = view.getUint32(offset);
    offset += 4;
    if (offset + valueLength > data.length) return undefined;
    out[name] = text.decode(data.subarray(offset, offset + valueLength));
    offset += valueLength;
  }
  return out;
}

/** The PONG for a PING: the PING's context (after its 2-byte TTL) echoed back. */
export function pongFor(pingData: Uint8Array): Uint8Array {
  return encodeCommand("PONG", pingData.subarray(2));
}

/** The reason text of an ERROR command (a length byte, then the reason). */
export function errorReason(data: Uint8Array): string {
  const length = data[0] ?? 0;
  return text.decode(data.subarray(1, 1 + length));
}

/** Socket types a DEALER may talk to (ZMTP's socket compatibility table). */
export const DEALER_PEERS = ["ROUTER", "DEALER"];
