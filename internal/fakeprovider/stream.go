package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// eventStream writes server-sent events, flushing each one on its own, and
// cuts the connection where the request's fault sets. It paces events as
// the current Reply sets, and stops sending once the client has gone.
type eventStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	closed  <-chan struct{} // Provider.closed
	note    *requestNote
	cut     int
	sent    int
	delay   time.Duration
	gate    <-chan struct{}
	stopped bool // the client went away or the provider closed
}

// startEventStream sends the stream's status and headers at once, as the
// providers do, so the client sees the response start before any event.
func (p *Provider) startEventStream(w http.ResponseWriter, r *http.Request) *eventStream {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	es := &eventStream{
		w:      w,
		rc:     http.NewResponseController(w),
		ctx:    r.Context(),
		closed: p.closed,
		note:   noteOf(r.Context()),
		cut:    cutAfter(r.Context()),
	}
	if es.note != nil {
		es.note.streamed = true
	}
	reply := p.currentReply()
	es.delay, es.gate = reply.EventDelay, reply.Gate
	es.flush()
	return es
}

// comment writes an SSE comment line, which clients must skip. It does not
// count as an event and is not paced.
func (es *eventStream) comment(text string) {
	if es.stopped {
		return
	}
	_, _ = fmt.Fprintf(es.w, ": %s\n\n", text)
	es.flush()
}

func (es *eventStream) sendJSON(v any) { es.sendNamedJSON("", v) }

// sendNamedJSON sends v as the data of an event named name; an empty name
// sends a "data:" line alone.
func (es *eventStream) sendNamedJSON(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic("fakeprovider: encoding an event: " + err.Error())
	}
	es.send(name, string(data))
}

// send writes one event after the pacing that the Reply sets. Past the
// fault's limit it aborts the handler, which makes net/http drop the
// connection mid-body.
func (es *eventStream) send(name, data string) {
	if es.stopped || !es.pace() {
		es.stop()
		return
	}
	if es.cut > 0 && es.sent >= es.cut {
		panic(http.ErrAbortHandler)
	}
	if name != "" {
		_, _ = fmt.Fprintf(es.w, "event: %s\n", name)
	}
	_, _ = fmt.Fprintf(es.w, "data: %s\n\n", data)
	if !es.flush() {
		es.stop()
		return
	}
	es.sent++
	if es.note != nil {
		es.note.events++
	}
}

// stop ends the stream, noting whether the client went away.
func (es *eventStream) stop() {
	es.stopped = true
	if es.note != nil && es.ctx.Err() != nil {
		es.note.canceled = true
	}
}

// pace waits for the Reply's delay before every event but the first, then
// for the gate, and reports whether the stream should go on.
func (es *eventStream) pace() bool {
	if es.delay > 0 && es.sent > 0 && !sleepUntil(es.ctx, es.closed, es.delay) {
		return false
	}
	if es.gate == nil {
		return true
	}
	select {
	case <-es.gate:
		return true
	case <-es.ctx.Done():
	case <-es.closed:
	}
	return false
}

// flush sends what was written and reports whether the connection took it.
// The client may have gone since, which pace finds out before the next
// event.
func (es *eventStream) flush() bool {
	return es.rc.Flush() == nil
}

// sleepUntil waits for d and reports whether it waited that long.
func sleepUntil(ctx context.Context, closed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-closed:
		return false
	}
}
