import { MongoTaskStore } from "../../src/store/mongo/mongo-task-store.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";
import { describeTaskStoreContract } from "./task-store-contract.js";

describeWithMongo("MongoDB adapter", () => {
  describeTaskStoreContract("mongodb", async () => {
    let offset = 0;
    const store = await MongoTaskStore.open({
      uri: mongodbUri(),
      database: uniqueDatabase(),
      now: () => new Date(Date.now() + offset),
    });
    const close = store.close.bind(store);
    store.close = async () => {
      await store.dropDatabase();
      await close();
    };
    return { store, advance: (ms) => void (offset += ms) };
  });
});
