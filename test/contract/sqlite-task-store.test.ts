import { SqliteTaskStore } from "../../src/store/sqlite/sqlite-task-store.js";
import { describeTaskStoreContract } from "./task-store-contract.js";

describeTaskStoreContract("sqlite (:memory:)", async () => {
  let offset = 0;
  const store = new SqliteTaskStore({ path: ":memory:", now: () => new Date(Date.now() + offset) });
  return { store, advance: (ms) => void (offset += ms) };
});
