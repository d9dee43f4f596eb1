// The transports every integration suite runs over: the native addon and the pure-TypeScript ZMTP client.
import type { TransportKind } from "../../ts/transport/select.js";

export const TRANSPORTS: readonly TransportKind[] = ["zeromq", "zmtp"];
