package smtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Invoker runs one step of a rotation function, as Secrets Manager invokes
// a rotation Lambda. An error fails the step.
type Invoker interface {
	Invoke(ctx context.Context, functionARN string, event events.SecretsManagerSecretRotationEvent) error
}

// InvokerFunc is a function used as an Invoker.
type InvokerFunc func(ctx context.Context, functionARN string, event events.SecretsManagerSecretRotationEvent) error

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, functionARN string, event events.SecretsManagerSecretRotationEvent) error {
	return f(ctx, functionARN, event)
}

// InvocationsPath is the invocation endpoint of a Lambda runtime interface
// emulator.
const InvocationsPath = "/2015-03-31/functions/function/invocations"

// HTTPInvoker posts each rotation event as JSON to a Lambda runtime
// interface emulator, which runs one function whatever the ARN.
type HTTPInvoker struct {
	// URL is the emulator's address, such as http://127.0.0.1:9000. A URL
	// without a path gets InvocationsPath.
	URL string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// FunctionError is a handler error that the function returned, as the
// emulator reports it: HTTP 200 with {"errorMessage", "errorType"}.
type FunctionError struct {
	Type    string
	Message string
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return "rotation function failed: " + e.Message
	}
	return "rotation function failed: " + e.Type + ": " + e.Message
}

// Invoke posts event and returns a *FunctionError if the function failed.
func (h HTTPInvoker) Invoke(ctx context.Context, functionARN string, event events.SecretsManagerSecretRotationEvent) error {
	target, err := h.target()
	if err != nil {
		return err
	}
	body, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode rotation event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", functionARN, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s step %s: %w", functionARN, event.Step, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("invoke %s step %s: read response: %w", functionARN, event.Step, err)
	}
	return invocationResult(resp, out)
}

func (h HTTPInvoker) target() (string, error) {
	u, err := url.Parse(h.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("invalid HTTPInvoker URL %q: use the emulator's address, such as http://127.0.0.1:9000", h.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = InvocationsPath
	}
	return u.String(), nil
}

// invocationResult turns the emulator's response into an error: a status
// other than 2xx, an X-Amz-Function-Error header, or a body that carries
// errorMessage.
func invocationResult(resp *http.Response, body []byte) error {
	var fe struct {
		ErrorMessage *string `json:"errorMessage"`
		ErrorType    string  `json:"errorType"`
	}
	_ = json.Unmarshal(body, &fe)
	if fe.ErrorMessage != nil {
		return &FunctionError{Type: fe.ErrorType, Message: *fe.ErrorMessage}
	}
	if h := resp.Header.Get("X-Amz-Function-Error"); h != "" {
		return &FunctionError{Type: h, Message: strings.TrimSpace(string(body))}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("rotation function invocation failed: HTTP %d: %s",
			resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
