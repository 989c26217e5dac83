// Package clientkeys is the list of the router's clients: the value of the
// router-clients secret, the kt- keys that keyturn issues to clients, and
// an index that finds the client a presented key belongs to.
//
// The secret stores only the SHA-256 hash of each key, so reading it never
// reveals a key. A key is shown once, when `rotator client add` creates
// it. The value is a JSON object:
//
//	{"clients": [{"id": "kc_…", "name": "ci", "hash": "sha256:…",
//	  "rps": 5, "burst": 10, "monthly_quota": 100000, "disabled": false,
//	  "created_at": "2026-12-04T10:00:00Z"}]}
//
// Fields keyturn does not know, at the top level and in each client, are
// kept and written back by Encode, so a newer keyturn's data survives an
// older one's change.
package clientkeys

import (
	"encoding/json"
	"math"
	"time"
)

// DefaultSecretID is the secret that holds the client list unless the
// router's configuration or the --secret flag names another one.
const DefaultSecretID = "keyturn/router-clients"

// Prefix starts every client key, so that a key found in a log or a
// repository can be recognised as a keyturn client key.
const Prefix = "kt-"

// IDPrefix starts every client id that NewClientID makes.
const IDPrefix = "kc_"

// MaxNameLen and MaxIDLen are the maximum lengths of a client's name, in
// characters, and of its id, in bytes.
const (
	MaxNameLen = 64
	MaxIDLen   = 64
)

// Client is one client of the router.
type Client struct {
	// ID is keyturn's id for the client, such as kc_0123456789ab: unique in
	// a List, visible ASCII without spaces. Logs and metrics name it.
	ID string `json:"id"`
	// Name is the operator's name for the client, unique in a List. It may
	// be empty in a value written by hand.
	Name string `json:"name"`
	// Hash is "sha256:" followed by the lowercase hex SHA-256 of the whole
	// key, prefix included; see Hash.
	Hash string `json:"hash"`
	// RPS is the sustained rate limit in requests per second; zero means
	// no limit.
	RPS float64 `json:"rps,omitempty"`
	// Burst is the size of the client's token bucket: how many requests it
	// may send at once on top of RPS. Zero leaves the size to the router;
	// see EffectiveBurst.
	Burst int `json:"burst,omitempty"`
	// MonthlyQuota is the maximum number of requests in a calendar month;
	// zero means no quota.
	MonthlyQuota int64 `json:"monthly_quota,omitempty"`
	// Disabled clients are kept in the list but their key is not accepted.
	Disabled bool `json:"disabled,omitempty"`
	// Created is when the client was added, or zero if the value has no
	// created_at.
	Created time.Time `json:"created_at"`

	// extra holds the fields keyturn does not know, as raw JSON.
	extra map[string]json.RawMessage
}

// List is the decoded value of the router-clients secret.
type List struct {
	Clients []Client

	// extra holds the top-level fields keyturn does not know, as raw JSON.
	extra map[string]json.RawMessage
}

// EffectiveBurst returns the burst the router applies to c: Burst when set,
// otherwise RPS rounded up and at least 1. It is 0 when c has no rate limit.
func (c Client) EffectiveBurst() int {
	switch {
	case c.RPS <= 0:
		return 0
	case c.Burst > 0:
		return c.Burst
	}
	return int(math.Max(1, math.Ceil(c.RPS)))
}
