package clientkeys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrMalformed matches every error from Parse and Encode.
var ErrMalformed = errors.New("malformed client list")

// Field names of the value's JSON form.
var (
	listFields   = []string{"clients"}
	clientFields = []string{"id", "name", "hash", "rps", "burst", "monthly_quota", "disabled", "created_at"}
)

var hashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Parse decodes the value of the router-clients secret and checks every
// client: an id and a well-formed hash are required, ids, names and
// hashes are unique, and limits are not negative. Its errors name the
// client by index and id and the field at fault, and never quote a hash.
func Parse(data []byte) (List, error) {
	known, extra, err := splitObject(data, listFields)
	if err != nil {
		return List{}, fmt.Errorf("%w: %s", ErrMalformed, err)
	}
	raw, ok := known["clients"]
	if !ok {
		return List{}, fmt.Errorf(`%w: field clients is missing: expected {"clients": [...]}`, ErrMalformed)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return List{}, fmt.Errorf("%w: field clients must be a JSON array", ErrMalformed)
	}

	l := List{Clients: make([]Client, 0, len(items)), extra: extra}
	for i, item := range items {
		c, err := parseClient(i, item)
		if err != nil {
			return List{}, fmt.Errorf("%w: %s", ErrMalformed, err)
		}
		l.Clients = append(l.Clients, c)
	}
	if err := checkUnique(l.Clients); err != nil {
		return List{}, fmt.Errorf("%w: %s", ErrMalformed, err)
	}
	return l, nil
}

// parseClient decodes the client at index i of the list.
func parseClient(i int, data []byte) (Client, error) {
	known, extra, err := splitObject(data, clientFields)
	if err != nil {
		return Client{}, fmt.Errorf("client %d: %s", i, err)
	}
	var c Client
	if err := decodeField(known, "id", &c.ID); err != nil {
		return Client{}, fmt.Errorf("client %d: %s", i, err)
	}
	if err := checkID(c.ID); err != nil {
		return Client{}, fmt.Errorf("client %d: field id %s", i, err)
	}
	where := fmt.Sprintf("client %d (id %s)", i, c.ID)
	if err := decodeClientFields(known, &c); err != nil {
		return Client{}, fmt.Errorf("%s: %s", where, err)
	}
	if err := checkClient(c); err != nil {
		return Client{}, fmt.Errorf("%s: %s", where, err)
	}
	c.extra = extra
	return c, nil
}

// decodeClientFields decodes every field of a client but its id.
func decodeClientFields(known map[string]json.RawMessage, c *Client) error {
	decoders := []struct {
		name   string
		target any
	}{
		{"name", &c.Name}, {"hash", &c.Hash}, {"rps", &c.RPS}, {"burst", &c.Burst},
		{"monthly_quota", &c.MonthlyQuota}, {"disabled", &c.Disabled}, {"created_at", &c.Created},
	}
	for _, d := range decoders {
		if err := decodeField(known, d.name, d.target); err != nil {
			return err
		}
	}
	return nil
}

// decodeField decodes the field name, if present, into target. A JSON
// null leaves target at its zero value.
func decodeField(known map[string]json.RawMessage, name string, target any) error {
	raw, ok := known[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, target); err != nil {
		return fmt.Errorf("field %s must be %s", name, fieldKind(target))
	}
	return nil
}

// fieldKind words the JSON type a field's target takes.
func fieldKind(target any) string {
	switch target.(type) {
	case *string:
		return "a JSON string"
	case *float64:
		return "a number"
	case *int, *int64:
		return "a whole number"
	case *bool:
		return "true or false"
	case *time.Time:
		return "an RFC 3339 time such as 2026-12-04T10:00:00Z"
	}
	return "valid JSON"
}

// checkClient checks a decoded client's fields but its id.
func checkClient(c Client) error {
	if c.Name != "" {
		if err := CheckName(c.Name); err != nil {
			return fmt.Errorf("field name %s", err)
		}
	}
	switch {
	case c.Hash == "":
		return errors.New("field hash is missing: every client needs the sha256 hash of its key; issue keys with 'rotator client add'")
	case !hashPattern.MatchString(c.Hash):
		return errors.New("field hash is not sha256: followed by 64 lowercase hex digits: issue keys with 'rotator client add'")
	case c.RPS < 0:
		return fmt.Errorf("field rps is negative (%g): use 0 for no limit, or requests per second", c.RPS)
	case c.Burst < 0:
		return fmt.Errorf("field burst is negative (%d): use 0, or the number of requests allowed at once", c.Burst)
	case c.MonthlyQuota < 0:
		return fmt.Errorf("field monthly_quota is negative (%d): use 0 for no quota, or requests per month", c.MonthlyQuota)
	}
	return nil
}

// checkID checks a client id: 1 to MaxIDLen bytes of visible ASCII. The
// limit on characters keeps ids safe to print in tables and logs.
func checkID(id string) error {
	if id == "" {
		return errors.New("is missing or empty: every client needs an id")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("is %d bytes long: the maximum is %d", len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%q has a space or a character outside visible ASCII at byte %d", id, i)
		}
	}
	return nil
}

// CheckName checks a client name: 1 to MaxNameLen printable characters,
// with no space at either end, because names are matched exactly. The
// error describes the problem without naming its origin, such as "is
// empty: …", so that callers prefix the flag or field it came from.
func CheckName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return errors.New("is empty: give the client a name such as ci or billing-service")
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8 text")
	case n > MaxNameLen:
		return fmt.Errorf("is %d characters long: the maximum is %d", n, MaxNameLen)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%q starts or ends with a space: remove it", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q has the non-printable character %U: use letters, digits, punctuation and spaces", name, r)
		}
	}
	return nil
}

// checkUnique rejects two clients with the same id, name or hash. A name
// may not be another client's id either, so that an argument that takes
// an id or a name selects one client.
func checkUnique(clients []Client) error {
	ids := make(map[string]int, len(clients))
	for i, c := range clients {
		if j, ok := ids[c.ID]; ok {
			return fmt.Errorf("clients %d and %d have the same id %s: ids must be unique", j, i, c.ID)
		}
		ids[c.ID] = i
	}
	names := make(map[string]int, len(clients))
	hashes := make(map[string]int, len(clients))
	for i, c := range clients {
		if j, ok := hashes[c.Hash]; ok {
			return fmt.Errorf("clients %s and %s have the same hash, so the same key: give each client its own key", clients[j].ID, c.ID)
		}
		hashes[c.Hash] = i
		if c.Name == "" {
			continue
		}
		if j, ok := names[c.Name]; ok {
			return fmt.Errorf("clients %s and %s have the same name %q: names must be unique", clients[j].ID, c.ID, c.Name)
		}
		if j, ok := ids[c.Name]; ok && j != i {
			return fmt.Errorf("client %s has the name %q, which is the id of client %d: rename it", c.ID, c.Name, j)
		}
		names[c.Name] = i
	}
	return nil
}

// splitObject decodes a JSON object into its known fields and the others.
// It rejects a repeated field, and a known field spelled in another case,
// because encoding/json would silently keep the last of repeated fields
// and matches names case-insensitively.
func splitObject(data []byte, knownNames []string) (known, extra map[string]json.RawMessage, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object (%s)", describeJSONError(err))
	}
	known = map[string]json.RawMessage{}
	seen := map[string]bool{}
	for dec.More() {
		name, value, err := nextField(dec)
		if err != nil {
			return nil, nil, err
		}
		if err := checkFieldName(name, knownNames, seen); err != nil {
			return nil, nil, err
		}
		if slices.Contains(knownNames, name) {
			known[name] = value
		} else {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[name] = value
		}
	}
	if err := finishObject(dec); err != nil {
		return nil, nil, err
	}
	return known, extra, nil
}

// nextField reads one name and value of an object.
func nextField(dec *json.Decoder) (string, json.RawMessage, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", nil, errors.New(describeJSONError(err))
	}
	name, _ := tok.(string)
	var value json.RawMessage
	if err := dec.Decode(&value); err != nil {
		return "", nil, errors.New(describeJSONError(err))
	}
	return name, value, nil
}

// finishObject reads an object's closing brace and checks that nothing
// follows it.
func finishObject(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return errors.New(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

func checkFieldName(name string, knownNames []string, seen map[string]bool) error {
	for _, k := range knownNames {
		if k != name && strings.EqualFold(k, name) {
			return fmt.Errorf("field %q: write it as %s", name, k)
		}
	}
	if seen[name] {
		return fmt.Errorf("field %q appears more than once: keep only one", name)
	}
	seen[name] = true
	return nil
}

// describeJSONError words a decoding error without the input it came
// from. A nil err is a value that is not an object.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return "the value must start with {"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	return "invalid JSON"
}
