// The interop scenario (../scenario.json) driven by grpc-java with stubs
// generated from proto/ by protoc-gen-grpc-java. Prints "ok <step>" per step;
// exits 1 at the first step that fails.
//
// usage: RunScenario ADDRESS SUITE SCENARIO_JSON
package rookery.interop;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import rookery.v1.TaskServiceGrpc;
import rookery.v1.TaskServiceGrpc.TaskServiceBlockingStub;
import rookery.v1.TaskServiceOuterClass.GetRequest;
import rookery.v1.TaskServiceOuterClass.ListRequest;
import rookery.v1.TaskServiceOuterClass.ResumeRequest;
import rookery.v1.TaskServiceOuterClass.CancelRequest;
import rookery.v1.TaskServiceOuterClass.DeleteRequest;
import rookery.v1.TaskServiceOuterClass.SubmitRequest;
import rookery.v1.TaskServiceOuterClass.WatchRequest;
import rookery.v1.TaskServiceOuterClass.WatchResponse;

public final class RunScenario {
  private static final Pattern VARIABLE = Pattern.compile("\\$\\{(\\w+)\\}");
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser();

  public static void main(String[] args) throws Exception {
    String address = args[0];
    Map<String, String> variables = new HashMap<>();
    variables.put("suite", args[1]);
    JsonArray steps = JsonParser.parseString(Files.readString(Path.of(args[2]))).getAsJsonObject().getAsJsonArray("steps");
    ManagedChannel channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    try {
      TaskServiceBlockingStub stub = TaskServiceGrpc.newBlockingStub(channel);
      for (JsonElement element : steps) {
        JsonObject step = element.getAsJsonObject();
        String name = step.get("name").getAsString();
        try {
          if (step.has("call")) callStep(stub, step, variables);
          else watchStep(stub, step, variables);
        } catch (Exception | AssertionError error) {
          System.err.println("step \"" + name + "\" failed: " + error.getMessage());
          System.exit(1);
        }
        System.out.println("ok " + name);
        System.out.flush();
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void callStep(TaskServiceBlockingStub stub, JsonObject step, Map<String, String> variables) throws Exception {
    String method = step.get("call").getAsString();
    JsonElement request = substitute(step.has("request") ? step.get("request") : new JsonObject(), variables);
    String expectCode = step.has("expectCode") ? step.get("expectCode").getAsString() : null;
    JsonElement response;
    try {
      response = toJson(call(stub.withDeadlineAfter(30, TimeUnit.SECONDS), method, request.toString()));
    } catch (StatusRuntimeException error) {
      String code = error.getStatus().getCode().name();
      if (code.equals(expectCode)) return;
      throw new AssertionError("expected " + (expectCode == null ? "OK" : expectCode) + ", got " + code + ": " + error.getStatus().getDescription());
    }
    if (expectCode != null) throw new AssertionError("expected " + expectCode + ", but the call succeeded");
    if (step.has("expect")) {
      for (Map.Entry<String, JsonElement> entry : step.getAsJsonObject("expect").entrySet()) {
        JsonElement got = lookup(response, entry.getKey());
        JsonElement want = substitute(entry.getValue(), variables);
        boolean same = want.isJsonNull()
            ? got.isJsonNull() || (got.isJsonPrimitive() && got.getAsString().isEmpty())
            : got.equals(want);
        if (!same) throw new AssertionError(entry.getKey() + ": expected " + want + ", got " + got);
      }
    }
    if (step.has("save")) {
      for (Map.Entry<String, JsonElement> entry : step.getAsJsonObject("save").entrySet()) {
        JsonElement saved = lookup(response, entry.getValue().getAsString());
        variables.put(entry.getKey(), saved.isJsonNull() ? "" : saved.getAsString());
      }
    }
  }

  private static Message call(TaskServiceBlockingStub stub, String method, String json) throws Exception {
    switch (method) {
      case "Submit": { SubmitRequest.Builder b = SubmitRequest.newBuilder(); PARSER.merge(json, b); return stub.submit(b.build()); }
      case "Get": { GetRequest.Builder b = GetRequest.newBuilder(); PARSER.merge(json, b); return stub.get(b.build()); }
      case "List": { ListRequest.Builder b = ListRequest.newBuilder(); PARSER.merge(json, b); return stub.list(b.build()); }
      case "Resume": { ResumeRequest.Builder b = ResumeRequest.newBuilder(); PARSER.merge(json, b); return stub.resume(b.build()); }
      case "Cancel": { CancelRequest.Builder b = CancelRequest.newBuilder(); PARSER.merge(json, b); return stub.cancel(b.build()); }
      case "Delete": { DeleteRequest.Builder b = DeleteRequest.newBuilder(); PARSER.merge(json, b); return stub.delete(b.build()); }
      default: throw new IllegalArgumentException("unknown method " + method);
    }
  }

  private static void watchStep(TaskServiceBlockingStub stub, JsonObject step, Map<String, String> variables) throws Exception {
    JsonObject request = substitute(step.get("watch"), variables).getAsJsonObject();
    String until = step.has("until") ? step.get("until").getAsString() : null;
    WatchRequest.Builder builder = WatchRequest.newBuilder();
    PARSER.merge(request.toString(), builder);
    List<JsonObject> events = new ArrayList<>();
    StringBuilder outputText = new StringBuilder();
    // A cancellable context ends the stream early once `until` is seen.
    Context.CancellableContext context = Context.current().withCancellation();
    try {
      context.call(() -> {
        Iterator<WatchResponse> stream = stub.withDeadlineAfter(30, TimeUnit.SECONDS).watch(builder.build());
        while (stream.hasNext()) {
          JsonObject response = toJson(stream.next()).getAsJsonObject();
          if (response.has("output")) {
            JsonObject output = response.getAsJsonObject("output");
            if (output.has("text")) outputText.append(output.get("text").getAsString());
            continue;
          }
          JsonObject event = response.getAsJsonObject("event");
          events.add(event);
          if (until != null && until.equals(event.get("status").getAsString())) break;
        }
        return null;
      });
    } finally {
      context.cancel(null);
    }
    if (events.isEmpty()) throw new AssertionError("no events");
    long start = (request.has("afterSequence") ? Long.parseLong(request.get("afterSequence").getAsString()) : 0) + 1;
    for (int i = 0; i < events.size(); i++) {
      long sequence = Long.parseLong(events.get(i).get("sequence").getAsString());
      if (sequence != start + i) throw new AssertionError("sequences not dense at " + i + ": " + sequence);
    }
    String first = events.get(0).get("status").getAsString();
    String last = events.get(events.size() - 1).get("status").getAsString();
    checkEqual(step, "expectFirst", first);
    checkEqual(step, "expectLast", last);
    checkEqual(step, "until", last);
    checkEqual(step, "expectOutputText", outputText.toString());
    if (step.has("expectLastEventText")) checkEqual(step, "expectLastEventText", lastAssistantText(events.get(events.size() - 1)));
  }

  private static String lastAssistantText(JsonObject event) {
    if (!event.has("messages")) return null;
    for (JsonElement message : event.getAsJsonArray("messages")) {
      JsonObject m = message.getAsJsonObject();
      if ("assistant".equals(m.get("role").getAsString())) return m.has("content") ? m.get("content").getAsString() : "";
    }
    return null;
  }

  private static void checkEqual(JsonObject step, String key, String got) {
    if (step.has(key) && !step.get(key).getAsString().equals(got)) {
      throw new AssertionError(key + ": expected " + step.get(key).getAsString() + ", got " + got);
    }
  }

  private static JsonElement toJson(Message message) throws Exception {
    return JsonParser.parseString(PRINTER.print(message));
  }

  private static JsonElement substitute(JsonElement value, Map<String, String> variables) {
    if (value.isJsonPrimitive() && value.getAsJsonPrimitive().isString()) {
      Matcher m = VARIABLE.matcher(value.getAsString());
      StringBuilder out = new StringBuilder();
      while (m.find()) m.appendReplacement(out, Matcher.quoteReplacement(variables.getOrDefault(m.group(1), "")));
      m.appendTail(out);
      return new JsonPrimitive(out.toString());
    }
    if (value.isJsonArray()) {
      JsonArray out = new JsonArray();
      for (JsonElement v : value.getAsJsonArray()) out.add(substitute(v, variables));
      return out;
    }
    if (value.isJsonObject()) {
      JsonObject out = new JsonObject();
      for (Map.Entry<String, JsonElement> e : value.getAsJsonObject().entrySet()) out.add(e.getKey(), substitute(e.getValue(), variables));
      return out;
    }
    return value;
  }

  private static JsonElement lookup(JsonElement value, String path) {
    for (String key : path.split("\\.")) {
      if (value.isJsonArray()) {
        JsonArray array = value.getAsJsonArray();
        if (key.equals("length")) return new JsonPrimitive(array.size());
        int index = Integer.parseInt(key);
        value = index < array.size() ? array.get(index) : JsonNull.INSTANCE;
      } else if (value.isJsonObject()) {
        JsonElement next = value.getAsJsonObject().get(key);
        value = next == null ? JsonNull.INSTANCE : next;
      } else {
        return JsonNull.INSTANCE;
      }
    }
    return value;
  }
}
