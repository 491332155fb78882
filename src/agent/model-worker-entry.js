// The file a model worker thread starts from: worker threads load JavaScript,
// so this registers tsx and then loads the worker. Run from source only: the
// build (tools/build.ts) starts its compiled model-worker.js instead.
import { register } from "tsx/esm/api";

register();
await import("./model-worker.ts");
