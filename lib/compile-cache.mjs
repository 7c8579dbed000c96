// Loaded before server.ts (`node --import ./lib/early-signals.mjs --import ./lib/compile-cache.mjs server.ts`): keeps
// what Node makes of each module — TypeScript with its types stripped, and V8's compiled code — on disk, so that a
// restart does not redo it for the thousand modules of a node. Measured on the embedded platform: stripping types
// and compiling were about half of a restart's CPU time. The cache lives next to the prepared database under
// node_modules/.cache/taskpool, is checked against each file's content, and is only an optimisation: when it cannot
// be written, Node runs without it. NODE_COMPILE_CACHE, when set, takes precedence.
import { enableCompileCache } from "node:module";
import { fileURLToPath, URL } from "node:url";

enableCompileCache(fileURLToPath(new URL("../node_modules/.cache/taskpool/compile-cache", import.meta.url)));
