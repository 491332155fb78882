import { ConfigError } from "../config.js";
import { errorMessage } from "../logger.js";
import { MongoTaskStore } from "./mongo/mongo-task-store.js";
import { SqliteTaskStore } from "./sqlite/sqlite-task-store.js";
import type { TaskStore } from "./task-store.js";
import type { Hooks } from "../hooks.js";

/** Which store to open: the embedded SQLite file, or a MongoDB database. */
export type StoreChoice = { kind: "sqlite"; path: string } | { kind: "mongodb"; uri: string; database: string; timeoutMs: number };

/** The adapter the choice names; `hooks` only from tests (see hooks.ts). */
export async function openStore(choice: StoreChoice, hooks?: Hooks): Promise<TaskStore> {
  switch (choice.kind) {
    case "sqlite":
      try {
        return new SqliteTaskStore({ path: choice.path, ...(hooks ? { hooks } : {}) });
      } catch (error) {
        // Name the file and the setting: SQLite's own "unable to open database file" names neither.
        throw new ConfigError(
          `cannot open the embedded store at ROOKERY_SQLITE_PATH (--sqlite-path) = ${JSON.stringify(choice.path)}: ${errorMessage(error)}`,
        );
      }
    case "mongodb":
      return MongoTaskStore.open({
        uri: choice.uri,
        database: choice.database,
        serverSelectionTimeoutMS: choice.timeoutMs,
        ...(hooks ? { hooks } : {}),
      });
  }
}
