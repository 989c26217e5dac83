package clientkeys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/keyturn/keyturn/keystore"
)

// keyBytes is the number of random bytes in a key: 256 bits, so that a
// key cannot be guessed and its unsalted hash cannot be inverted.
const keyBytes = 32

// hashPrefix starts every Hash.
const hashPrefix = "sha256:"

// NewKey returns a new client key, Prefix followed by 32 random bytes in
// unpadded base64url (46 characters in all), and its Hash, which is what
// the client list stores.
func NewKey() (key keystore.Secret, hash string, err error) {
	var b [keyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return keystore.Secret{}, "", fmt.Errorf("generate a client key: %w", err)
	}
	k := Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return keystore.NewSecret(k), Hash(k), nil
}

// Hash returns "sha256:" and the lowercase hex SHA-256 of the whole key
// string, prefix included.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewClientID returns a new client id: IDPrefix followed by 12 random
// lowercase hex digits (48 bits). Callers check it against the ids already
// in the list, since 48 bits make a collision unlikely but possible.
func NewClientID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a client id: %w", err)
	}
	return IDPrefix + hex.EncodeToString(b[:]), nil
}
