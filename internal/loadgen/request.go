package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyturn/keyturn/keystore"
)

// messagePrefix starts the user message of every request, before its
// sequence number.
const messagePrefix = "load "

// echoPrefix is the text before the last user message in the stand-in
// provider's reply.
const echoPrefix = "echo: "

// maxErrorBody caps the part of an unexpected response body that an error
// quotes.
const maxErrorBody = 300

// Message returns the user message of request seq.
func Message(seq int) string { return messagePrefix + strconv.Itoa(seq) }

// MessageSeq returns the sequence number of the request whose chat body is
// body, as the stand-in provider records it upstream. It reports false for
// a body that loadgen did not send.
func MessageSeq(body []byte) (int, bool) {
	var req struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Messages) == 0 {
		return 0, false
	}
	digits, ok := strings.CutPrefix(req.Messages[len(req.Messages)-1].Content, messagePrefix)
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	seq, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func (g *Generator) do(ctx context.Context, seq int, stream bool) (int, error) {
	body, err := json.Marshal(map[string]any{
		"model":    g.opts.Model,
		"messages": []map[string]string{{"role": "user", "content": Message(seq)}},
		"stream":   stream,
	})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.opts.URL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.opts.Key.Reveal())
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, redactKey(err, g.opts.Key)
	}
	defer resp.Body.Close()
	want := echoPrefix + Message(seq)
	if stream {
		return resp.StatusCode, checkStream(resp, want)
	}
	return resp.StatusCode, checkCompletion(resp, want)
}

// redactKey keeps the client key out of a transport error, which quotes no
// header today but would be printed whole if it ever did.
func redactKey(err error, key keystore.Secret) error {
	msg := err.Error()
	if k := key.Reveal(); k != "" && strings.Contains(msg, k) {
		return errors.New(strings.ReplaceAll(msg, k, keystore.Redacted))
	}
	return err
}

func checkCompletion(resp *http.Response, want string) error {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("status %d, body cut after %d bytes: %w", resp.StatusCode, len(data), err)
	}
	if err := checkHead(resp, "application/json", data); err != nil {
		return err
	}
	var c struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &c); err != nil || len(c.Choices) != 1 {
		return fmt.Errorf("not a chat completion with one choice (%v): %s", err, quote(data))
	}
	if got := c.Choices[0].Message.Content; got != want {
		return fmt.Errorf("content %q, want %q", got, want)
	}
	return nil
}

// checkHead checks the status and media type of a response, quoting the
// start of an error body.
func checkHead(resp *http.Response, mediaType string, data []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, quote(data))
	}
	if got, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); got != mediaType {
		return fmt.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), mediaType)
	}
	return nil
}

// checkStream reads a streamed chat completion to its end and checks that
// its deltas add up to want, that it ends with [DONE], and that nothing
// follows.
func checkStream(resp *http.Response, want string) error {
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
		return checkHead(resp, "text/event-stream", data)
	}
	if err := checkHead(resp, "text/event-stream", nil); err != nil {
		return err
	}
	var text strings.Builder
	events := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return checkStreamEnd(sc, text.String(), want, events)
		}
		delta, err := deltaText(data)
		if err != nil {
			return fmt.Errorf("event %d: %w", events+1, err)
		}
		text.WriteString(delta)
		events++
	}
	return fmt.Errorf("the stream ended after %d events without [DONE] (%v); text so far %q", events, sc.Err(), text.String())
}

func checkStreamEnd(sc *bufio.Scanner, got, want string, events int) error {
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			return fmt.Errorf("the stream goes on after [DONE]: %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("after [DONE]: %w", err)
	}
	if got != want {
		return fmt.Errorf("streamed text %q over %d events, want %q", got, events, want)
	}
	return nil
}

// deltaText returns the delta content of one chat.completion.chunk event.
func deltaText(data string) (string, error) {
	var chunk struct {
		Object  string `json:"object"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(data), &chunk); err != nil || chunk.Object != "chat.completion.chunk" {
		return "", fmt.Errorf("not a chat.completion.chunk (%v): %s", err, quote([]byte(data)))
	}
	var text strings.Builder
	for _, c := range chunk.Choices {
		text.WriteString(c.Delta.Content)
	}
	return text.String(), nil
}

func quote(data []byte) string {
	if len(data) > maxErrorBody {
		return strconv.Quote(string(data[:maxErrorBody])) + "..."
	}
	return strconv.Quote(string(data))
}
