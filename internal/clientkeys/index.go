package clientkeys

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// Index finds the client that a presented key belongs to. It is built once
// per version of the client list and is safe for concurrent use, because
// Lookup only reads it.
type Index struct {
	entries []indexEntry
}

type indexEntry struct {
	sum    [sha256.Size]byte
	client Client
}

// NewIndex indexes the clients of l. A client whose Hash is malformed,
// which Parse never returns, matches no key.
func NewIndex(l List) *Index {
	ix := &Index{entries: make([]indexEntry, 0, len(l.Clients))}
	for _, c := range l.Clients {
		e := indexEntry{client: c}
		if !decodeHash(c.Hash, &e.sum) {
			continue
		}
		ix.entries = append(ix.entries, e)
	}
	return ix
}

func decodeHash(hash string, sum *[sha256.Size]byte) bool {
	digits, ok := strings.CutPrefix(hash, hashPrefix)
	if !ok || len(digits) != hex.EncodedLen(sha256.Size) {
		return false
	}
	_, err := hex.Decode(sum[:], []byte(digits))
	return err == nil
}

// Len returns the number of clients in the index.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.entries)
}

// Lookup returns the client whose key is presented, disabled or not: the
// caller checks Disabled. It hashes the key once and compares the hash
// with every entry in constant time, without stopping at a match, so the
// time it takes does not depend on which entry matches or how much of a
// hash does.
func (ix *Index) Lookup(presented string) (Client, bool) {
	if ix == nil {
		return Client{}, false
	}
	sum := hashKey(presented)
	match := -1
	for i := range ix.entries {
		equal := subtle.ConstantTimeCompare(sum[:], ix.entries[i].sum[:])
		match = subtle.ConstantTimeSelect(equal, i, match)
	}
	if match < 0 {
		return Client{}, false
	}
	return ix.entries[match].client, true
}

// keyBufferLen is the longest presented key that hashKey hashes without
// allocating, comfortably above the 46 bytes of the keys NewKey makes.
const keyBufferLen = 128

// hashKey returns the SHA-256 of key. It copies a key of up to
// keyBufferLen bytes into a stack buffer, because converting a string of
// more than 32 bytes to a []byte allocates even when the slice does not
// escape (Go 1.26).
func hashKey(key string) [sha256.Size]byte {
	if len(key) > keyBufferLen {
		return sha256.Sum256([]byte(key))
	}
	var buf [keyBufferLen]byte
	n := copy(buf[:], key)
	return sha256.Sum256(buf[:n])
}
