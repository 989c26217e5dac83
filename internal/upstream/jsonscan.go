package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// member is one name/value pair of a JSON object, located by byte offsets
// into the object's text so that it can be read and edited without
// copying or re-encoding the rest.
type member struct {
	// nameStart and nameEnd enclose the name's text between its quotes,
	// escapes undecoded.
	nameStart, nameEnd int
	// start is the offset just after the previous value, or after the
	// opening brace for the first member, so data[start:valueEnd] of a
	// member other than the first is its text with the comma before it.
	start      int
	valueStart int
	valueEnd   int
}

func (m member) value(data []byte) []byte { return data[m.valueStart:m.valueEnd] }

// nameIs reports whether the member's decoded name is exactly name, which
// must be ASCII.
func (m member) nameIs(data []byte, name string) bool {
	raw := data[m.nameStart:m.nameEnd]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	return unescapedEquals(raw, name)
}

// nameFolds reports whether the member's decoded name equals name under
// Unicode case folding, as encoding/json matches a member to a field.
func (m member) nameFolds(data []byte, name string) bool {
	raw := data[m.nameStart:m.nameEnd]
	if bytes.IndexByte(raw, '\\') < 0 {
		return bytes.EqualFold(raw, []byte(name))
	}
	return strings.EqualFold(m.name(data), name)
}

// name returns the member's decoded name. An escape may stand for any
// character, so a name with one is decoded in full.
func (m member) name(data []byte) string {
	var decoded string
	// visitMembers found the name in valid JSON, so it decodes.
	_ = json.Unmarshal(data[m.nameStart-1:m.nameEnd+1], &decoded)
	return decoded
}

// errNotObject is the error of visitMembers for text that is not one JSON
// object.
var errNotObject = errors.New("not a JSON object")

// visitMembers calls visit with each member of the JSON object in data, in
// order. It fails unless data is exactly one JSON object, surrounding
// whitespace aside. It copies nothing: json.Valid checks the text, and the
// members are then found by skipping over the valid values.
func visitMembers(data []byte, visit func(member)) error {
	if !json.Valid(data) {
		return describeInvalid(data)
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errNotObject
	}
	i++
	start := i
	for {
		i = skipSpace(data, i)
		if data[i] == '}' {
			return nil
		}
		var m member
		m.start, m.nameStart = start, i+1
		i = skipString(data, i)
		m.nameEnd = i - 1
		i = skipSpace(data, i) + 1 // past the colon
		m.valueStart = skipSpace(data, i)
		m.valueEnd = skipValue(data, m.valueStart)
		visit(m)
		start = m.valueEnd
		i = skipSpace(data, m.valueEnd)
		if data[i] == ',' {
			i++
		}
	}
}

// objectMembers returns the members of the JSON object in data, as
// visitMembers finds them.
func objectMembers(data []byte) ([]member, error) {
	var members []member
	err := visitMembers(data, func(m member) { members = append(members, m) })
	return members, err
}

// describeInvalid words why data, which json.Valid rejected, is not one
// JSON object, by position only: the body is the client's and may be
// large. json.Unmarshal checks its whole input before it decodes any of
// it, so for invalid text it returns the syntax error without copying.
func describeInvalid(data []byte) error {
	err := json.Unmarshal(data, new(struct{}))
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return errNotObject
	}
	first := skipSpace(data, 0)
	if first == len(data) || data[first] != '{' {
		return errNotObject
	}
	// skipContainer stops at the object's end without checking the text,
	// so the syntax error's offset decides whether the object was valid
	// up to there.
	end, complete := skipContainer(data, first)
	switch {
	case !complete && syn.Offset >= int64(len(data)):
		return fmt.Errorf("%w: the JSON ends early", errNotObject)
	case complete && syn.Offset > int64(end):
		return fmt.Errorf("%w: text follows the object at byte %d", errNotObject, skipSpace(data, end))
	}
	return fmt.Errorf("%w: invalid JSON at byte %d", errNotObject, syn.Offset)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the offset just after the string that starts with
// the quote at data[i], or len(data) if it does not end.
func skipString(data []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return len(data)
		}
		i += j
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		backslashes := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			backslashes++
		}
		i++
		if backslashes%2 == 0 {
			return i
		}
	}
}

// skipValue returns the offset just after the valid JSON value that starts
// at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		end, _ := skipContainer(data, i)
		return end
	}
	for i < len(data) && !isDelimiter(data[i]) {
		i++
	}
	return i
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// skipContainer returns the offset just after the object or array that
// starts at data[i], and whether it ends before data does. It counts
// brackets and skips strings, and checks nothing else.
func skipContainer(data []byte, i int) (end int, complete bool) {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			i = skipString(data, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
		i++
	}
	return len(data), false
}

// unescapedEquals reports whether the JSON string text raw, between its
// quotes, decodes to s, which must be ASCII.
func unescapedEquals(raw []byte, s string) bool {
	j := 0
	for i := 0; i < len(raw); {
		c, size := raw[i], 1
		if c == '\\' {
			c, size = unescapeASCII(raw[i:])
			if size == 0 {
				return false
			}
		}
		if j >= len(s) || s[j] != c {
			return false
		}
		i, j = i+size, j+1
	}
	return j == len(s)
}

// unescapeASCII decodes the escape at the start of raw and returns its
// byte and length, or a length of 0 if it is not an ASCII character.
func unescapeASCII(raw []byte) (c byte, size int) {
	if len(raw) < 2 {
		return 0, 0
	}
	switch raw[1] {
	case '"', '\\', '/':
		return raw[1], 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(raw) < 6 {
			return 0, 0
		}
		var r int
		for _, h := range raw[2:6] {
			switch {
			case '0' <= h && h <= '9':
				r = r<<4 | int(h-'0')
			case 'a' <= h && h <= 'f':
				r = r<<4 | int(h-'a'+10)
			case 'A' <= h && h <= 'F':
				r = r<<4 | int(h-'A'+10)
			default:
				return 0, 0
			}
		}
		if r >= 0x80 {
			return 0, 0
		}
		return byte(r), 6
	}
	return 0, 0
}
