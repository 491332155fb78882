// The zero-latency OpenAI-compatible provider of the end-to-end figure, in its
// own process so that neither system under test shares a CPU budget with it.
// Every call is answered at once with a streamed "done". Prints "ready <baseURL>".
import { FakeOpenAI } from "../../test/support/fake-openai.js";

const fake = await FakeOpenAI.start();
fake.respond(() => ({ content: "done" }));
setInterval(() => fake.calls.splice(0), 1000).unref(); // it records calls; a benchmark makes many
console.log(`ready ${fake.baseURL}`);
