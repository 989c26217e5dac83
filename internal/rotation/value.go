package rotation

import (
	"encoding/json"
	"fmt"

	"github.com/keyturn/keyturn/keystore"
)

// knownValueFields are the value fields keystore.Value reads; every other
// field is carried forward as it is.
var knownValueFields = map[string]bool{
	"api_key": true, "key_id": true, "created_at": true,
	"settings": true, "retire": true, "last_failure": true,
}

// sameKey reports whether two values hold the same provider key.
func sameKey(a, b keystore.Value) bool {
	if a.KeyID != "" && a.KeyID == b.KeyID {
		return true
	}
	return a.APIKey.Equal(b.APIKey)
}

// mergeRetired appends the entries of more that list does not have yet.
func mergeRetired(list, more []keystore.Retired) []keystore.Retired {
	out := append([]keystore.Retired(nil), list...)
	for _, r := range more {
		if !hasRetired(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func hasRetired(list []keystore.Retired, r keystore.Retired) bool {
	for _, x := range list {
		if x.KeyID == r.KeyID && x.VersionID == r.VersionID {
			return true
		}
	}
	return false
}

// carryUnknown adds to dst the fields of src that keyturn does not know and
// dst lacks, so that data written by a newer keyturn survives a rotation.
func carryUnknown(dst, src keystore.Value) (keystore.Value, error) {
	dstFields, err := valueFields(dst)
	if err != nil {
		return keystore.Value{}, err
	}
	srcFields, err := valueFields(src)
	if err != nil {
		return keystore.Value{}, err
	}
	added := false
	for k, raw := range srcFields {
		if _, ok := dstFields[k]; ok || knownValueFields[k] {
			continue
		}
		dstFields[k] = raw
		added = true
	}
	if !added {
		return dst, nil
	}

	out, err := json.Marshal(dstFields)
	if err != nil {
		return keystore.Value{}, fmt.Errorf("carry unknown value fields forward: %w", err)
	}
	return keystore.ParseValue(keystore.NewSecret(string(out)))
}

func valueFields(v keystore.Value) (map[string]json.RawMessage, error) {
	enc, err := v.Encode()
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(enc.Reveal()), &fields); err != nil {
		// The text is keyturn's own encoding, which holds a key, so the error
		// describes none of its content.
		return nil, fmt.Errorf("%w: cannot decode an encoded value", keystore.ErrMalformedValue)
	}
	return fields, nil
}
