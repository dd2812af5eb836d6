// Node's entry: inet.js's API, with init() and initSync() reading inet_bg.wasm themselves.
export * from "./inet.js";
import type { InitInput, InitOutput, SyncInitInput } from "./inet.js";

/** Instantiates the module; with no argument, from the inet_bg.wasm beside this file. */
export default function init(
  module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;

/** Instantiates the module synchronously; with no argument, from the inet_bg.wasm beside this file. */
export function initSync(module?: { module: SyncInitInput } | SyncInitInput): InitOutput;
