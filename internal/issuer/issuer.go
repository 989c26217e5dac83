// Package issuer mints and revokes provider keys for issuers other than
// "staged", where a person stages each key by hand.
package issuer

import (
	"context"
	"errors"

	"github.com/keyturn/keyturn/keystore"
)

// ErrMisconfigured matches the Mint and Revoke errors that no retry fixes:
// the issuer's own configuration is invalid, or the provider rejected the
// admin key or the request (a 4xx other than 408 and 429). Other errors may
// pass when retried. Use errors.Is.
var ErrMisconfigured = errors.New("issuer misconfigured")

// MintRequest is a request for a new key. Name is the provider-side name of the key,
// which carries the secret id and the rotation token so that a retried
// createSecret can recognise a key it already minted.
type MintRequest struct {
	SecretID string
	Token    string
	Name     string
	Settings keystore.Settings
	// Admin is the issuer's admin or management key, read from the secret
	// that the keyturn:issuer-secret tag names.
	Admin keystore.Secret
}

// Minted is a key an issuer created.
type Minted struct {
	Key   keystore.Secret
	KeyID string // the provider's id or hash for the key, used to revoke it
}

// RevokeRequest is a request to revoke a key by its provider-side id.
type RevokeRequest struct {
	KeyID    string
	Settings keystore.Settings
	Admin    keystore.Secret
}

// Issuer mints and revokes keys at one provider. Errors that retrying cannot
// fix match ErrMisconfigured.
type Issuer interface {
	Mint(ctx context.Context, req MintRequest) (Minted, error)
	Revoke(ctx context.Context, req RevokeRequest) error
}
