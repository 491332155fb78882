// The file a model worker thread starts from: worker threads load JavaScript,
// so this registers tsx (as bin/rookery.js does) and then loads the worker.
import { register } from "tsx/esm/api";

register();
await import("./model-worker.ts");
