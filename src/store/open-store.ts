import type { Config } from "../config.js";
import { MongoTaskStore } from "./mongo/mongo-task-store.js";
import { SqliteTaskStore } from "./sqlite/sqlite-task-store.js";
import type { TaskStore } from "./task-store.js";

/** The adapter the config names. */
export async function openStore(config: Config): Promise<TaskStore> {
  switch (config.store) {
    case "sqlite":
      return new SqliteTaskStore({ path: config.sqlitePath });
    case "mongodb":
      return MongoTaskStore.open({
        uri: config.mongodbUri!,
        database: config.mongodbDb,
        serverSelectionTimeoutMS: config.mongodbTimeoutMs,
      });
  }
}
