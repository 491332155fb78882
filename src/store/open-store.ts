import { ConfigError, type Config } from "../config.js";
import { errorMessage } from "../logger.js";
import { MongoTaskStore } from "./mongo/mongo-task-store.js";
import { SqliteTaskStore } from "./sqlite/sqlite-task-store.js";
import type { TaskStore } from "./task-store.js";

/** The adapter the config names. */
export async function openStore(config: Config): Promise<TaskStore> {
  switch (config.store) {
    case "sqlite":
      try {
        return new SqliteTaskStore({ path: config.sqlitePath });
      } catch (error) {
        // Name the file and the setting: SQLite's own "unable to open database file" names neither.
        throw new ConfigError(
          `cannot open the embedded store at ROOKERY_SQLITE_PATH (--sqlite-path) = ${JSON.stringify(config.sqlitePath)}: ${errorMessage(error)}`,
        );
      }
    case "mongodb":
      return MongoTaskStore.open({
        uri: config.mongodbUri!,
        database: config.mongodbDb,
        serverSelectionTimeoutMS: config.mongodbTimeoutMs,
      });
  }
}
