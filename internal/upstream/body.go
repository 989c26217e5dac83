package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// Errors that ModelOf and Serve wrap, for callers that pick a response by
// cause. The wrapping error's text is the public message.
var (
	// ErrInvalidBody is the cause when the body is not one JSON object or
	// has more than one "model" member.
	ErrInvalidBody = errors.New("invalid request body")
	// ErrNoModel is the cause when the body has no "model" member or its
	// value is not a non-empty string.
	ErrNoModel = errors.New("no model in the request body")
	// ErrContentEncoding is the cause when the body is compressed.
	ErrContentEncoding = errors.New("unsupported content encoding")
)

// bodyError is an error of the client's body: a public message and its
// cause, ErrInvalidBody or ErrNoModel.
type bodyError struct {
	cause error
	msg   string
}

func (e *bodyError) Error() string { return e.msg }
func (e *bodyError) Unwrap() error { return e.cause }

// ModelOf returns the "model" member of a client's request body, by the
// rules that Serve applies. The body must be exactly one JSON object with
// one member named exactly "model" (encoding/json would also match
// "MODEL"), whose value is a non-empty string. The error's text is public
// and tells the client what to send. It wraps ErrInvalidBody or ErrNoModel.
func ModelOf(body []byte) (string, error) {
	_, found, err := findModel(body)
	if err != nil {
		return "", err
	}
	return modelName(body, found)
}

// findModel returns the members of the object in body and the "model"
// member.
func findModel(body []byte) ([]member, member, error) {
	members, err := objectMembers(body)
	if err != nil {
		return nil, member{}, &bodyError{ErrInvalidBody, fmt.Sprintf("the request body is %v: "+
			`send a JSON object such as {"model": "…", "messages": […]}`, err)}
	}
	var found *member
	for i, m := range members {
		if m.name != "model" {
			continue
		}
		if found != nil {
			return nil, member{}, &bodyError{ErrInvalidBody, `the request body has more than one "model" member: send one`}
		}
		found = &members[i]
	}
	if found == nil {
		return nil, member{}, &bodyError{ErrNoModel, `the request body has no "model" member: ` + nameAModel}
	}
	return members, *found, nil
}

// CheckContentEncoding returns an error if the request headers h name a
// Content-Encoding other than identity: keyturn reads the body's "model"
// member and rewrites it, so it needs the body uncompressed. Call it
// before reading the body. The error's text is public and names the
// encoding; send it with 415 Unsupported Media Type and Accept-Encoding:
// identity. It wraps ErrContentEncoding.
func CheckContentEncoding(h http.Header) error {
	for _, field := range h.Values("Content-Encoding") {
		for _, coding := range strings.Split(field, ",") {
			coding = strings.TrimSpace(coding)
			if coding == "" || strings.EqualFold(coding, "identity") {
				continue
			}
			return &bodyError{ErrContentEncoding, fmt.Sprintf(
				"the request body has Content-Encoding %.40q, which this router does not decode: "+
					"send the body uncompressed, without a Content-Encoding header", coding)}
		}
	}
	return nil
}

// nameAModel is the advice to a client whose body names no model.
const nameAModel = "name one of the router's models, which GET /v1/models lists"

func modelName(body []byte, m member) (string, error) {
	var name string
	if err := json.Unmarshal(m.value(body), &name); err != nil || name == "" {
		return "", &bodyError{ErrNoModel, `the request body's "model" is not a non-empty string: ` + nameAModel}
	}
	return name, nil
}

// prepareBody rewrites the "model" member of the client's JSON object to
// model and keeps every other byte. It checks the body as ModelOf does.
func prepareBody(body []byte, model string) (clientBody, error) {
	members, found, err := findModel(body)
	if err != nil {
		return clientBody{}, err
	}
	var b clientBody
	if b.model, err = modelName(body, found); err != nil {
		return clientBody{}, err
	}
	for _, m := range members {
		switch m.name {
		case "stream":
			b.stream = string(m.value(body)) == "true"
		case "stream_options":
			b.includeUsage = includesUsage(m.value(body))
		}
	}
	b.data = replaceValue(body, found, model)
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
