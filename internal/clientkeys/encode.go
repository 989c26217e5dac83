package clientkeys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// wireClient is the JSON form of a client's known fields, in the order
// Encode writes them.
type wireClient struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Hash         string    `json:"hash"`
	RPS          float64   `json:"rps,omitempty"`
	Burst        int       `json:"burst,omitempty"`
	MonthlyQuota int64     `json:"monthly_quota,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	Created      time.Time `json:"created_at,omitzero"`
}

// Encode returns the list as the secret's JSON value, with the unknown
// fields that Parse kept. It checks the result with Parse's rules, so a
// list that a router would reject is never written.
func (l List) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"clients":[`)
	for i, c := range l.Clients {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := c.encode(&b); err != nil {
			return nil, fmt.Errorf("%w: client %d (id %s): %w", ErrMalformed, i, c.ID, err)
		}
	}
	b.WriteByte(']')
	if err := writeExtra(&b, l.extra); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	b.WriteByte('}')

	if _, err := Parse(b.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encode writes one client as a JSON object.
func (c Client) encode(b *bytes.Buffer) error {
	w := wireClient{
		ID: c.ID, Name: c.Name, Hash: c.Hash, RPS: c.RPS, Burst: c.Burst,
		MonthlyQuota: c.MonthlyQuota, Disabled: c.Disabled, Created: c.Created.UTC(),
	}
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	// Drop the closing brace, so that the unknown fields follow the known
	// ones inside the same object.
	b.Write(data[:len(data)-1])
	if err := writeExtra(b, c.extra); err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

// writeExtra writes each unknown field, sorted by name, as ,"name":value.
func writeExtra(b *bytes.Buffer, extra map[string]json.RawMessage) error {
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		key, err := json.Marshal(name)
		if err != nil {
			return err
		}
		b.WriteByte(',')
		b.Write(key)
		b.WriteByte(':')
		if err := json.Compact(b, extra[name]); err != nil {
			return fmt.Errorf("unknown field %q is not valid JSON", name)
		}
	}
	return nil
}
