package rotation

import "github.com/keyturn/keyturn/keystore"

// sameKey reports whether two values hold the same provider key. Key ids
// decide only when a value lacks its key, because an operator may stage
// two keys under one key id.
func sameKey(a, b keystore.Value) bool {
	if a.APIKey.IsZero() || b.APIKey.IsZero() {
		return a.KeyID != "" && a.KeyID == b.KeyID
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
