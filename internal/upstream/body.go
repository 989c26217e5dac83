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

// Body is a client's request body, parsed once: the router reads its model
// to pick a route, and Serve rewrites that model without parsing the body
// again. The zero Body is not a parsed body, and Serve rejects it.
type Body struct {
	// data is the client's text, which Body refers to and never copies.
	data  []byte
	model string
	// modelStart and modelEnd enclose the "model" member's value in data.
	modelStart, modelEnd int
	// stream and includeUsage are the client's "stream" and
	// "stream_options.include_usage".
	stream       bool
	includeUsage bool
}

// Model returns the body's "model" member: the model that the client named.
func (b Body) Model() string { return b.model }

// Errors that ParseBody and CheckContentEncoding wrap, for callers that
// pick a response by cause. The wrapping error's text is the public
// message.
var (
	// ErrInvalidBody is the cause when the body is not one JSON object,
	// has more than one "model" member, or has a member such as "MODEL"
	// whose name differs from "model" only in case.
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

// nameAModel is the advice to a client whose body names no model.
const nameAModel = "name one of the router's models, which GET /v1/models lists"

// ParseBody parses a client's request body. It must be exactly one JSON
// object with one member named exactly "model", whose value is a non-empty
// string, and no member whose name differs from "model" only in case, such
// as "MODEL" or "Mod\u0065l". A relay behind the router that decodes JSON
// as encoding/json does matches member names case-insensitively, and the
// last match wins. Such a relay would serve that member's model, not the
// one the router routed and rewrote, so a client could pick any model on
// the operator's key.
//
// The Body refers to data, which the caller must not change afterwards.
// The error's text is public and names what the client should send. It
// wraps ErrInvalidBody or ErrNoModel, and WriteBodyError sends it.
func ParseBody(data []byte) (Body, error) {
	b := Body{data: data, modelStart: -1}
	models := 0
	var variant string // the first member other than "model" that folds to it
	err := visitMembers(data, func(m member) {
		switch {
		case m.nameIs(data, "model"):
			models++
			b.modelStart, b.modelEnd = m.valueStart, m.valueEnd
		case variant == "" && m.nameFolds(data, "model"):
			variant = m.name(data)
		case m.nameIs(data, "stream"):
			b.stream = string(m.value(data)) == "true"
		case m.nameIs(data, "stream_options"):
			b.includeUsage = includesUsage(m.value(data))
		}
	})
	switch {
	case err != nil:
		return Body{}, &bodyError{ErrInvalidBody, fmt.Sprintf("the request body is %v: "+
			`send a JSON object such as {"model": "…", "messages": […]}`, err)}
	case variant != "":
		return Body{}, &bodyError{ErrInvalidBody, fmt.Sprintf(
			`the request body has a member %q: send the model only as the lower-case "model" member`, variant)}
	case models > 1:
		return Body{}, &bodyError{ErrInvalidBody, `the request body has more than one "model" member: send one`}
	case models == 0:
		return Body{}, &bodyError{ErrNoModel, `the request body has no "model" member: ` + nameAModel}
	}
	if err := json.Unmarshal(data[b.modelStart:b.modelEnd], &b.model); err != nil || b.model == "" {
		return Body{}, &bodyError{ErrNoModel, `the request body's "model" is not a non-empty string: ` + nameAModel}
	}
	return b, nil
}

func includesUsage(streamOptions []byte) bool {
	var opts struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(streamOptions, &opts) == nil && opts.IncludeUsage
}

// WriteBodyError sends a 400 for an error of ParseBody, with the code
// "missing_model" when it wraps ErrNoModel and "invalid_request_body"
// otherwise.
func WriteBodyError(w http.ResponseWriter, err error) {
	code := codeInvalidBody
	if errors.Is(err, ErrNoModel) {
		code = codeMissingModel
	}
	WriteError(w, http.StatusBadRequest, code, err.Error())
}

// outgoingBody is a client's body with its "model" set to the upstream
// model, kept as three parts of which only the model is new, so that a
// large body is not copied to be sent.
type outgoingBody struct {
	head, model, tail []byte
}

// withModel returns the body to send, with model in place of the client's.
func (b Body) withModel(model string) outgoingBody {
	quoted, _ := json.Marshal(model) // a string always encodes
	return outgoingBody{head: b.data[:b.modelStart], model: quoted, tail: b.data[b.modelEnd:]}
}

func (o outgoingBody) len() int { return len(o.head) + len(o.model) + len(o.tail) }

// reader returns the body's text from the start, once per attempt.
func (o outgoingBody) reader() io.ReadCloser {
	return io.NopCloser(io.MultiReader(bytes.NewReader(o.head), bytes.NewReader(o.model), bytes.NewReader(o.tail)))
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

// removeMembers returns data with every member called name cut out,
// together with the comma that separated it from its neighbour, and
// whether it found one. data must be the text that members came from.
func removeMembers(data []byte, members []member, name string) ([]byte, bool) {
	out := data
	removed := false
	// Later members first, so that the offsets of earlier ones stay valid.
	for i := len(members) - 1; i >= 0; i-- {
		m := members[i]
		if !m.nameIs(data, name) {
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
