// JSON text of worker data: msgpack integers beyond 2^53 arrive as bigint, which JSON.stringify refuses.

/** JSON.stringify that writes a bigint as a number when it fits exactly, else as a string. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, v) => (typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v),
    indent,
  );
}
