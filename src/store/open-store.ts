import type { Config } from "../config.js";
import { SqliteTaskStore } from "./sqlite/sqlite-task-store.js";
import type { TaskStore } from "./task-store.js";

/** The adapter the config names. */
export async function openStore(config: Config): Promise<TaskStore> {
  switch (config.store) {
    case "sqlite":
      return new SqliteTaskStore({ path: config.sqlitePath });
    case "mongodb":
      throw new Error("the mongodb store is not built yet");
  }
}
