// The interop scenario (../scenario.json) driven by google.golang.org/grpc with
// stubs generated from proto/. Prints "ok <step>" per step; exits 1 at the
// first step that fails.
//
// usage: go run . ADDRESS SUITE SCENARIO_JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	rookeryv1 "rookery.local/interop/gen/rookery/v1"
)

type step struct {
	Name                string            `json:"name"`
	Call                string            `json:"call"`
	Watch               any               `json:"watch"`
	ExpectOutputText    *string           `json:"expectOutputText"`
	ExpectLastEventText *string           `json:"expectLastEventText"`
	Request             any               `json:"request"`
	Until               string            `json:"until"`
	Expect              map[string]any    `json:"expect"`
	ExpectCode          string            `json:"expectCode"`
	ExpectFirst         string            `json:"expectFirst"`
	ExpectLast          string            `json:"expectLast"`
	Save                map[string]string `json:"save"`
}

var variable = regexp.MustCompile(`\$\{(\w+)\}`)

func substitute(v any, vars map[string]string) any {
	switch t := v.(type) {
	case string:
		return variable.ReplaceAllStringFunc(t, func(m string) string { return vars[m[2:len(m)-1]] })
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = substitute(x, vars)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			out[k] = substitute(x, vars)
		}
		return out
	}
	return v
}

func lookup(v any, path string) any {
	for _, key := range strings.Split(path, ".") {
		switch t := v.(type) {
		case []any:
			if key == "length" {
				return float64(len(t))
			}
			i, _ := strconv.Atoi(key)
			if i >= len(t) {
				return nil
			}
			v = t[i]
		case map[string]any:
			v = t[key]
		default:
			return nil
		}
	}
	return v
}

// toJSON renders a message as proto JSON, then as a generic value.
func toJSON(m proto.Message) any {
	b, err := protojson.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func fromJSON(v any, m proto.Message) error {
	b, _ := json.Marshal(v)
	return protojson.Unmarshal(b, m)
}

// codeName turns codes.NotFound into NOT_FOUND.
func codeName(err error) string {
	name := status.Code(err).String()
	return strings.ToUpper(regexp.MustCompile(`([a-z])([A-Z])`).ReplaceAllString(name, "${1}_${2}"))
}

// invoke decodes the proto-JSON request into req, makes the call and renders the response.
func invoke[Req, Res proto.Message](ctx context.Context, request any, req Req, rpc func(context.Context, Req, ...grpc.CallOption) (Res, error)) (any, error) {
	if err := fromJSON(request, req); err != nil {
		return nil, err
	}
	res, err := rpc(ctx, req)
	if err != nil {
		return nil, err
	}
	return toJSON(res), nil
}

func call(ctx context.Context, c rookeryv1.TaskServiceClient, method string, request any) (any, error) {
	switch method {
	case "Submit":
		return invoke(ctx, request, &rookeryv1.SubmitRequest{}, c.Submit)
	case "Get":
		return invoke(ctx, request, &rookeryv1.GetRequest{}, c.Get)
	case "List":
		return invoke(ctx, request, &rookeryv1.ListRequest{}, c.List)
	case "Resume":
		return invoke(ctx, request, &rookeryv1.ResumeRequest{}, c.Resume)
	case "Cancel":
		return invoke(ctx, request, &rookeryv1.CancelRequest{}, c.Cancel)
	}
	return nil, fmt.Errorf("unknown method %q", method)
}

func watch(ctx context.Context, c rookeryv1.TaskServiceClient, request any, until string) ([]map[string]any, error) {
	r := &rookeryv1.WatchRequest{}
	if err := fromJSON(request, r); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(ctx, r)
	if err != nil {
		return nil, err
	}
	var responses []map[string]any
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return responses, nil
		}
		if err != nil {
			return nil, err
		}
		response := toJSON(res).(map[string]any)
		responses = append(responses, response)
		if event, ok := response["event"].(map[string]any); ok && until != "" && event["status"] == until {
			return responses, nil
		}
	}
}

func runStep(ctx context.Context, c rookeryv1.TaskServiceClient, s step, vars map[string]string) error {
	if s.Call != "" {
		res, err := call(ctx, c, s.Call, substitute(s.Request, vars))
		if err != nil {
			if s.ExpectCode != "" && codeName(err) == s.ExpectCode {
				return nil
			}
			return fmt.Errorf("expected %q, got %s: %v", s.ExpectCode, codeName(err), err)
		}
		if s.ExpectCode != "" {
			return fmt.Errorf("expected %s, but the call succeeded", s.ExpectCode)
		}
		for path, want := range s.Expect {
			got, want := lookup(res, path), substitute(want, vars)
			ok := reflect.DeepEqual(got, want)
			if want == nil {
				ok = got == nil || got == ""
			}
			if !ok {
				return fmt.Errorf("%s: expected %v, got %v", path, want, got)
			}
		}
		for name, path := range s.Save {
			saved := lookup(res, path)
			vars[name] = ""
			if saved != nil {
				vars[name] = fmt.Sprint(saved)
			}
		}
		return nil
	}
	request := substitute(s.Watch, vars).(map[string]any)
	responses, err := watch(ctx, c, request, s.Until)
	if err != nil {
		return err
	}
	var events []map[string]any
	outputText := ""
	for _, r := range responses {
		if event, ok := r["event"].(map[string]any); ok {
			events = append(events, event)
		}
		if output, ok := r["output"].(map[string]any); ok {
			text, _ := output["text"].(string)
			outputText += text
		}
	}
	if len(events) == 0 {
		return errors.New("no events")
	}
	after, _ := strconv.Atoi(fmt.Sprint(request["afterSequence"]))
	for i, e := range events {
		if seq, _ := strconv.Atoi(e["sequence"].(string)); seq != after+1+i {
			return fmt.Errorf("sequences not dense at %d: got %d", i, seq)
		}
	}
	first, last := events[0]["status"], events[len(events)-1]["status"]
	if s.ExpectFirst != "" && first != s.ExpectFirst {
		return fmt.Errorf("first status %v, expected %s", first, s.ExpectFirst)
	}
	if s.ExpectLast != "" && last != s.ExpectLast {
		return fmt.Errorf("last status %v, expected %s", last, s.ExpectLast)
	}
	if s.Until != "" && last != s.Until {
		return fmt.Errorf("stream ended at %v before %s", last, s.Until)
	}
	if s.ExpectOutputText != nil && outputText != *s.ExpectOutputText {
		return fmt.Errorf("output text %q, expected %q", outputText, *s.ExpectOutputText)
	}
	if s.ExpectLastEventText != nil {
		lastText := ""
		messages, _ := events[len(events)-1]["messages"].([]any)
		for _, m := range messages {
			if message := m.(map[string]any); message["role"] == "assistant" {
				lastText, _ = message["content"].(string)
				break
			}
		}
		if lastText != *s.ExpectLastEventText {
			return fmt.Errorf("last event's text %q, expected %q", lastText, *s.ExpectLastEventText)
		}
	}
	return nil
}

func main() {
	address, suite, scenarioPath := os.Args[1], os.Args[2], os.Args[3]
	raw, err := os.ReadFile(scenarioPath)
	if err != nil {
		panic(err)
	}
	var scenario struct {
		Steps []step `json:"steps"`
	}
	if err := json.Unmarshal(raw, &scenario); err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rookeryv1.NewTaskServiceClient(conn)
	vars := map[string]string{"suite": suite}
	for _, s := range scenario.Steps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := runStep(ctx, client, s, vars)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "step %q failed: %v\n", s.Name, err)
			os.Exit(1)
		}
		fmt.Printf("ok %s\n", s.Name)
	}
}
