package fakeprovider

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Reply shapes the completions of every shape, chat and responses alike,
// streamed or not, so that a test can send a very large event or watch a
// stream arrive one event at a time. The zero Reply echoes the last user
// message, one piece a word, and streams without pauses.
type Reply struct {
	// Content replaces the echo as the assistant's text. Empty is the echo.
	Content string
	// Chunks is how many delta events Content is split into, at rune
	// boundaries and as evenly as bytes allow. 0 or 1 sends Content in one
	// event, so a 5 MB Content is one 5 MB "data:" line.
	Chunks int
	// EventDelay waits between two events of a stream, or less if the
	// client goes away.
	EventDelay time.Duration
	// Gate, when not nil, holds each event of a stream until a value is
	// received from it, so a test sends one value per event it wants (or
	// closes Gate to release the rest). A stream stops when the client goes
	// away or the provider closes while it waits. SSE comments, such as
	// OpenRouter's processing line, are not held.
	Gate <-chan struct{}
}

// SetReply makes r shape every completion from now on, in place of the
// Reply set before. SetReply(Reply{}) goes back to the echo.
func (p *Provider) SetReply(r Reply) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reply = r
}

func (p *Provider) currentReply() Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reply
}

// pieces returns the deltas of the reply to a prompt whose last user
// message is last.
func (r Reply) pieces(last string) []string {
	if r.Content != "" {
		return splitEvenly(r.Content, max(r.Chunks, 1))
	}
	text := "Hello from the keyturn stand-in provider."
	if strings.TrimSpace(last) != "" {
		text = "echo: " + last
	}
	words := strings.Fields(text)
	for i := 1; i < len(words); i++ {
		words[i] = " " + words[i]
	}
	return words
}

// splitEvenly cuts s into n pieces of about equal size without splitting a
// rune; a short s gives fewer pieces.
func splitEvenly(s string, n int) []string {
	size := max(len(s)/n, 1)
	var out []string
	for len(s) > 0 {
		end := min(size, len(s))
		if len(out) == n-1 {
			end = len(s)
		}
		for end < len(s) && !utf8.RuneStart(s[end]) {
			end++
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}
