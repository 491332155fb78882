// Submit a task to Rookery and print its work as it happens: the model's text
// as it streams, each tool call and result, and the status changes.
//
//   cd examples/java && mvn -q package   # generates the stubs from ../../proto
//   java -cp "target/classes:$(cat target/classpath.txt)" rookery.example.Main 127.0.0.1:50051 "What is 6*7?"
package rookery.example;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import rookery.v1.TaskOuterClass.Message;
import rookery.v1.TaskOuterClass.Task;
import rookery.v1.TaskOuterClass.TaskEvent;
import rookery.v1.TaskOuterClass.ToolCall;
import rookery.v1.TaskServiceGrpc;
import rookery.v1.TaskServiceOuterClass.GetRequest;
import rookery.v1.TaskServiceOuterClass.SubmitRequest;
import rookery.v1.TaskServiceOuterClass.WatchRequest;
import rookery.v1.TaskServiceOuterClass.WatchResponse;

public final class Main {
  public static void main(String[] args) throws InterruptedException {
    String address = args.length > 0 ? args[0] : "127.0.0.1:50051";
    String prompt = args.length > 1 ? args[1] : "What is 6*7? Use the calculator.";
    ManagedChannel channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    try {
      TaskServiceGrpc.TaskServiceBlockingStub tasks = TaskServiceGrpc.newBlockingStub(channel);
      String id = tasks.submit(SubmitRequest.newBuilder().setPrompt(prompt).putLabels("example", "java").build()).getTask().getId();
      System.out.println("submitted " + id);

      // Replays from the first event, then follows live ones; ends after the terminal one.
      // include_output adds the model's output between the events, as it is written.
      Iterator<WatchResponse> stream = tasks.watch(WatchRequest.newBuilder().setId(id).setIncludeOutput(true).build());
      while (stream.hasNext()) {
        WatchResponse response = stream.next();
        if (response.hasOutput()) {
          System.out.print(response.getOutput().getText());
          continue;
        }
        TaskEvent event = response.getEvent();
        for (Message message : event.getMessagesList()) {
          for (ToolCall call : message.getToolCallsList()) System.out.printf("%n-> %s(%s)%n", call.getName(), call.getArguments());
          if (message.getRole().equals("tool")) System.out.printf("<- %s%n", message.getContent());
        }
        System.out.printf("%n#%d %s (iterations %d)%n", event.getSequence(), event.getStatus(), event.getIterations());
      }

      Task task = tasks.get(GetRequest.newBuilder().setId(id).build()).getTask();
      System.out.println(task.getStatus() + ": " + (task.hasResult() ? task.getResult() : task.getError()));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
