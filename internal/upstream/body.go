package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// member is one name/value pair of a JSON object, located by byte offsets
// into the object's text so that it can be edited without re-encoding the
// rest.
type member struct {
	name string
	// start is the offset just after the previous value, or after the
	// opening brace for the first member, so data[start:valueEnd] of a
	// member other than the first is its text with the comma before it.
	start      int
	valueStart int
	valueEnd   int
}

func (m member) value(data []byte) []byte { return data[m.valueStart:m.valueEnd] }

// errNotObject is the error of objectMembers for text that is not one JSON
// object.
var errNotObject = errors.New("not a JSON object")

// objectMembers returns the members of the JSON object in data, in order.
// It fails unless data is exactly one JSON object, surrounding whitespace
// aside.
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, describeBodyError(err)
	}
	var members []member
	start := int(dec.InputOffset())
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, describeBodyError(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, describeBodyError(err)
		}
		end := int(dec.InputOffset())
		members = append(members, member{name: tok.(string), start: start, valueStart: end - len(raw), valueEnd: end})
		start = end
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, describeBodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: text follows the object at byte %d", errNotObject, dec.InputOffset())
	}
	return members, nil
}

// describeBodyError words a decoding error by position only: the body is
// the client's and may be large.
func describeBodyError(err error) error {
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return errNotObject
	case errors.As(err, &syn):
		return fmt.Errorf("%w: invalid JSON at byte %d", errNotObject, syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the JSON ends early", errNotObject)
	}
	return errNotObject
}

// clientBody is the client's request body, ready to send.
type clientBody struct {
	// data is the body with "model" set to the upstream model.
	data []byte
	// model is the model the client named.
	model string
	// stream and includeUsage are the client's "stream" and
	// "stream_options.include_usage".
	stream       bool
	includeUsage bool
}

// prepareBody rewrites the "model" field of the client's JSON object to
// model and keeps every other byte. Its errors are public and tell the
// client what to send.
func prepareBody(body []byte, model string) (clientBody, error) {
	members, err := objectMembers(body)
	if err != nil {
		return clientBody{}, fmt.Errorf("the request body is %w: send a JSON object such as "+
			`{"model": "…", "messages": […]}`, err)
	}
	var b clientBody
	var found *member
	for i, m := range members {
		switch m.name {
		case "model":
			if found != nil {
				return clientBody{}, errors.New(`the request body has more than one "model" field: send one`)
			}
			found = &members[i]
		case "stream":
			b.stream = string(m.value(body)) == "true"
		case "stream_options":
			b.includeUsage = includesUsage(m.value(body))
		}
	}
	if found == nil {
		return clientBody{}, errors.New(`the request body has no "model" field: name the model to use`)
	}
	if err := json.Unmarshal(found.value(body), &b.model); err != nil || b.model == "" {
		return clientBody{}, errors.New(`the request body's "model" is not a non-empty string: name the model to use`)
	}
	b.data = replaceValue(body, *found, model)
	return b, nil
}

func includesUsage(streamOptions []byte) bool {
	var opts struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(streamOptions, &opts) == nil && opts.IncludeUsage
}

// replaceValue returns a copy of data with m's value replaced by the JSON
// string s.
func replaceValue(data []byte, m member, s string) []byte {
	quoted, _ := json.Marshal(s) // a string always encodes
	out := make([]byte, 0, len(data)-(m.valueEnd-m.valueStart)+len(quoted))
	out = append(out, data[:m.valueStart]...)
	out = append(out, quoted...)
	return append(out, data[m.valueEnd:]...)
}

// removeMembers returns data with every member called name cut out,
// together with the comma that separated it from its neighbour, and
// whether it found one. data must be the text that members came from.
func removeMembers(data []byte, members []member, name string) ([]byte, bool) {
	out := data
	removed := false
	// Later members first, so that the offsets of earlier ones stay valid.
	for i := len(members) - 1; i >= 0; i-- {
		m := members[i]
		if m.name != name {
			continue
		}
		end := m.valueEnd
		if i == 0 {
			// The first member has no comma before it: cut the one after
			// it, and the space up to the next member, if one follows.
			if comma := bytes.IndexByte(out[end:], ','); comma >= 0 {
				end += comma + 1
				end += len(out[end:]) - len(bytes.TrimLeft(out[end:], " \t\r\n"))
			}
		}
		if !removed {
			out = bytes.Clone(data)
			removed = true
		}
		out = append(out[:m.start], out[end:]...)
	}
	return out, removed
}
