package upstream

import (
	"bytes"
	"io"
	"slices"
)

// usageFilter removes the usage that a client of a streamed chat
// completion did not ask for: events whose chunk is usage only
// ("choices": [] with "usage") are dropped, and the "usage" field of other
// chunks is cut out. Every other byte passes unchanged, and each event is
// returned from Read as soon as its blank line arrives, so the proxy
// flushes it at once. An event is held until it is complete, up to
// maxHeldEvent bytes. A longer event, far beyond a chunk of a few tokens,
// passes unfiltered, and so does the rest of the stream, so that a stream
// without blank lines cannot make the router buffer it whole.
//
// NOTE: events are split at "\n\n" and "\n\r\n" only. A stream that ends
// its lines with a lone "\r" passes unchanged, but all at once when the
// stream ends.
// Events with more than one data line pass unchanged, as no provider
// splits a chunk over several.
type usageFilter struct {
	src io.ReadCloser
	// in contains bytes read from src that are not yet a complete event, and
	// scan is the offset in it from which to look for the event's end.
	in   []byte
	scan int
	// out contains filtered bytes not yet returned, the first sent of them.
	out  []byte
	sent int
	err  error // src's read error, returned once out and in are drained
	// limit is the most bytes of an unfinished event that in may hold.
	limit int
	// passThrough is set once an event outgrew limit: from then on Read
	// returns what src returns. onOverflow, if set, is called then.
	passThrough bool
	onOverflow  func()
}

// filterReadSize is the least free space for each read from the source.
const filterReadSize = 32 << 10

// maxHeldEvent is the limit of a usageFilter: 16 MiB, far above the
// streamed chunks of chat completions, which carry a few tokens each.
const maxHeldEvent = 16 << 20

// newUsageFilter returns a filter of src that calls onOverflow, if it is
// not nil, when an event outgrows maxHeldEvent.
func newUsageFilter(src io.ReadCloser, onOverflow func()) *usageFilter {
	return &usageFilter{src: src, limit: maxHeldEvent, onOverflow: onOverflow}
}

func (f *usageFilter) Close() error { return f.src.Close() }

func (f *usageFilter) Read(p []byte) (int, error) {
	for f.sent == len(f.out) {
		f.out, f.sent = f.out[:0], 0
		if f.passThrough {
			if f.err != nil {
				return 0, f.err
			}
			return f.src.Read(p)
		}
		if f.err != nil {
			if len(f.in) == 0 {
				return 0, f.err
			}
			// An incomplete last event passes unchanged.
			f.out, f.in = append(f.out, f.in...), f.in[:0]
			break
		}
		f.fill()
	}
	n := copy(p, f.out[f.sent:])
	f.sent += n
	return n, nil
}

// fill reads once from the source and moves every complete event to out.
func (f *usageFilter) fill() {
	f.in = slices.Grow(f.in, filterReadSize)
	n, err := f.src.Read(f.in[len(f.in):cap(f.in)])
	f.in = f.in[:len(f.in)+n]
	f.err = err

	consumed := 0
	for {
		end := eventEnd(f.in, f.scan)
		if end < 0 {
			break
		}
		f.out = appendFiltered(f.out, f.in[consumed:end])
		consumed, f.scan = end, end
	}
	if consumed > 0 {
		f.in = f.in[:copy(f.in, f.in[consumed:])]
		f.scan -= consumed
	}
	if len(f.in) > f.limit {
		f.overflow()
		return
	}
	// Resume the search at the last newline, which may start a blank
	// line whose end has not arrived yet.
	if i := bytes.LastIndexByte(f.in[f.scan:], '\n'); i >= 0 {
		f.scan += i
	} else {
		f.scan = len(f.in)
	}
}

// overflow passes the unfinished event on as it is and stops filtering.
func (f *usageFilter) overflow() {
	f.out = append(f.out, f.in...)
	f.in, f.scan = nil, 0
	f.passThrough = true
	if f.onOverflow != nil {
		f.onOverflow()
	}
}

// eventEnd returns the offset just after the first blank line in data at or
// after from, or -1 if there is none yet.
func eventEnd(data []byte, from int) int {
	for i := from; i < len(data); i++ {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		rest := data[i+1:]
		switch {
		case len(rest) >= 1 && rest[0] == '\n':
			return i + 2
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			return i + 3
		}
	}
	return -1
}

// appendFiltered appends event to dst, without the usage the client did
// not ask for.
func appendFiltered(dst, event []byte) []byte {
	start, end, ok := dataLine(event)
	if !ok {
		return append(dst, event...)
	}
	data := event[start:end]
	if !bytes.Contains(data, []byte(`"usage"`)) {
		return append(dst, event...)
	}
	edited, drop := stripUsage(data)
	switch {
	case drop:
		return dst
	case edited == nil:
		return append(dst, event...)
	}
	dst = append(dst, event[:start]...)
	dst = append(dst, edited...)
	return append(dst, event[end:]...)
}

// dataLine returns the offsets of the payload of the event's only data
// line, and false if it has none or several.
func dataLine(event []byte) (start, end int, ok bool) {
	found := false
	for pos := 0; pos < len(event); {
		lineEnd := pos + bytes.IndexByte(event[pos:], '\n')
		if lineEnd < pos {
			lineEnd = len(event)
		}
		line := bytes.TrimSuffix(event[pos:lineEnd], []byte("\r"))
		if bytes.HasPrefix(line, []byte("data:")) {
			if found {
				return 0, 0, false
			}
			found = true
			start, end = pos+len("data:"), pos+len(line)
			if start < end && event[start] == ' ' {
				start++
			}
		}
		pos = lineEnd + 1
	}
	return start, end, found
}

// stripUsage returns the chunk without its "usage" field, or drop when the
// chunk is usage only. It returns nil, false for a chunk to leave as it is:
// one without usage, or not a JSON object ("[DONE]").
func stripUsage(chunk []byte) (edited []byte, drop bool) {
	members, err := objectMembers(chunk)
	if err != nil {
		return nil, false
	}
	hasUsage, noChoices := false, false
	for _, m := range members {
		switch {
		case m.nameIs(chunk, "usage"):
			hasUsage = true
		case m.nameIs(chunk, "choices"):
			noChoices = isEmptyArray(m.value(chunk))
		}
	}
	if !hasUsage {
		return nil, false
	}
	if noChoices {
		return nil, true
	}
	edited, _ = removeMembers(chunk, members, "usage")
	return edited, false
}

func isEmptyArray(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) >= 2 && raw[0] == '[' && raw[len(raw)-1] == ']' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}
