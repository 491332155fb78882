// The Go callers of bench/end-to-end.ts: submits `count` tasks, `callers` at a
// time over one connection, with the generated client a Go user would use. On
// this 2-core machine the callers share the cores with the system measured, and
// a Go gRPC client costs per call about what ioredis costs BullMQ's callers per
// `add`, where a Node gRPC client costs several times that (bench/RESULTS.md).
//
//	go run . <address> <count> <callers> <prompt>
//
// Each task's prompt is "<prompt>.<n>". Prints "submitted <count>" and exits 0
// when every call answered OK; otherwise prints the first error and exits 1.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rookeryv1 "rookery.local/bench-submitter/gen/rookery/v1"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: go-submitter <address> <count> <callers> <prompt>")
		os.Exit(2)
	}
	address, prompt := os.Args[1], os.Args[4]
	count, err1 := strconv.ParseInt(os.Args[2], 10, 64)
	callers, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || count < 0 || callers < 1 {
		fmt.Fprintln(os.Stderr, "count and callers must be whole numbers, callers at least 1")
		os.Exit(2)
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	tasks := rookeryv1.NewTaskServiceClient(conn)

	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := next.Add(1); n <= count; n = next.Add(1) {
				request := &rookeryv1.SubmitRequest{Prompt: prompt + "." + strconv.FormatInt(n, 10)}
				if _, err := tasks.Submit(context.Background(), request); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "submit failed:", firstErr)
		os.Exit(1)
	}
	fmt.Println("submitted", count)
}
