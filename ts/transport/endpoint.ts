// ZeroMQ endpoint strings (`tcp://host:port`, `ipc://path`) as socket addresses.

/** Where a `node:net` socket connects for a ZeroMQ endpoint. */
export type SocketAddress = { kind: "tcp"; host: string; port: number } | { kind: "ipc"; path: string };

/** Parses `tcp://host:port` (IPv6 in brackets) or `ipc://path` (`ipc://@name`: Linux abstract). */
export function parseEndpoint(endpoint: string): SocketAddress {
  if (endpoint.startsWith("ipc://")) {
    const path = endpoint.slice("ipc://".length);
    if (!path) throw new TypeError(`endpoint ${endpoint}: ipc:// needs a socket path`);
    return { kind: "ipc", path: path.startsWith("@") ? `\0${path.slice(1)}` : path };
  }
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(endpoint);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new TypeError(`endpoint ${endpoint}: port must be 1-65535, got ${port}`);
    return { kind: "tcp", host: tcp[1]!.replace(/^\[|\]$/g, ""), port };
  }
  throw new TypeError(`endpoint ${endpoint}: expected tcp://host:port or ipc://path`);
}
