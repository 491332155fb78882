// Submit a task to Rookery and print its work as it happens: the model's text
// as it streams, each tool call and result, and the status changes.
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	npx buf generate --template examples/go/buf.gen.yaml   # from the repo root
//	cd examples/go && go run . 127.0.0.1:50051 "What is 6*7?"
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rookeryv1 "rookery.local/example/gen/rookery/v1"
)

func main() {
	address, prompt := "127.0.0.1:50051", "What is 6*7? Use the calculator."
	if len(os.Args) > 1 {
		address = os.Args[1]
	}
	if len(os.Args) > 2 {
		prompt = os.Args[2]
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	tasks := rookeryv1.NewTaskServiceClient(conn)
	ctx := context.Background()

	submitted, err := tasks.Submit(ctx, &rookeryv1.SubmitRequest{Prompt: prompt, Labels: map[string]string{"example": "go"}})
	if err != nil {
		log.Fatal(err)
	}
	id := submitted.GetTask().GetId()
	fmt.Println("submitted", id)

	// Replays from the first event, then follows live ones; ends after the terminal one.
	// IncludeOutput adds the model's output between the events, as it is written.
	stream, err := tasks.Watch(ctx, &rookeryv1.WatchRequest{Id: id, IncludeOutput: true})
	if err != nil {
		log.Fatal(err)
	}
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if out := res.GetOutput(); out != nil {
			fmt.Print(out.GetText())
			continue
		}
		e := res.GetEvent()
		for _, m := range e.GetMessages() {
			for _, call := range m.GetToolCalls() {
				fmt.Printf("\n-> %s(%s)\n", call.GetName(), call.GetArguments())
			}
			if m.GetRole() == "tool" {
				fmt.Printf("<- %s\n", m.GetContent())
			}
		}
		fmt.Printf("\n#%d %s (iterations %d)\n", e.GetSequence(), e.GetStatus(), e.GetIterations())
	}

	got, err := tasks.Get(ctx, &rookeryv1.GetRequest{Id: id})
	if err != nil {
		log.Fatal(err)
	}
	if got.GetTask().GetStatus() != rookeryv1.TaskStatus_TASK_STATUS_COMPLETED {
		log.Fatalf("task ended %s: %s", got.GetTask().GetStatus(), got.GetTask().GetError())
	}
	fmt.Println(got.GetTask().GetResult())
}
