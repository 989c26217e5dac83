package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// DevName is the keyturn:issuer tag value of the dev issuer.
const DevName = "dev"

// maxDevResponse bounds the response bodies the dev issuer reads.
const maxDevResponse = 1 << 20

// dev mints keys at keyturn's stand-in provider through its
// OpenRouter-shaped key management API.
type dev struct {
	base   *url.URL
	client *http.Client
	err    error // the reason baseURL was rejected, returned by every call
}

// NewDev returns the dev issuer, for tests and `rotator dev` only: it mints
// keys with POST {baseURL}/keys and revokes them with DELETE
// {baseURL}/keys/{hash}, as OpenRouter's management API does, at keyturn's
// stand-in provider. baseURL is the stand-in's OpenRouter root, such as
// http://127.0.0.1:8080/openrouter/api/v1. A baseURL that is not on a
// loopback address is refused: every Mint and Revoke then fails, and no
// request is sent. A nil client uses one with a 10-second timeout.
func NewDev(baseURL string, client *http.Client) Issuer {
	d := &dev{client: client}
	if d.client == nil {
		d.client = &http.Client{Timeout: 10 * time.Second}
	}
	d.base, d.err = parseLoopbackURL(baseURL)
	return d
}

func parseLoopbackURL(raw string) (*url.URL, error) {
	shown := provider.RedactURL(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dev issuer: base URL %q is not an absolute http(s) URL: %w", shown, ErrMisconfigured)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("dev issuer: base URL %q must not carry credentials, a query or a fragment: %w", shown, ErrMisconfigured)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("dev issuer: base URL %q is not on a loopback address: "+
			"the dev issuer only mints at keyturn's stand-in provider: %w", shown, ErrMisconfigured)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// createdKey is the response to POST /keys: the key, shown once, and its hash.
type createdKey struct {
	Key  string `json:"key"`
	Data struct {
		Hash string `json:"hash"`
	} `json:"data"`
}

// Mint creates a key named req.Name with req.Admin as the management key.
// It first deletes every live key already named req.Name: such a key was
// minted by an earlier try of the same rotation whose response was lost, so
// no version stores its value and nothing else would ever revoke it.
//
// NOTE: two createSecret calls running at once for one token can each take
// the other's key for a lost one. The store keeps one of the two keys, and
// that key may then be a deleted one, which testSecret rejects.
func (d *dev) Mint(ctx context.Context, req MintRequest) (Minted, error) {
	if d.err != nil {
		return Minted{}, d.err
	}
	if err := d.deleteNamed(ctx, req.Name, req.Admin); err != nil {
		return Minted{}, err
	}
	body, err := json.Marshal(map[string]string{"name": req.Name})
	if err != nil {
		return Minted{}, fmt.Errorf("dev issuer: encode mint request: %w", err)
	}
	resp, err := d.do(ctx, http.MethodPost, "/keys", bytes.NewReader(body), req.Admin)
	if err != nil {
		return Minted{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return Minted{}, statusError("POST", "/keys", resp)
	}

	var created createdKey
	// The body holds the new key, so a decoding error is reported without it.
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDevResponse)).Decode(&created); err != nil {
		return Minted{}, errors.New("dev issuer: POST /keys returned a body that is not the expected JSON")
	}
	if created.Key == "" || created.Data.Hash == "" {
		return Minted{}, errors.New("dev issuer: POST /keys returned no key or no hash")
	}
	return Minted{Key: keystore.NewSecret(created.Key), KeyID: created.Data.Hash}, nil
}

// listedKey is one entry of GET /keys: never the key itself.
type listedKey struct {
	Hash string `json:"hash"`
	Name string `json:"name"`
}

// maxListPages bounds the pages deleteNamed reads, so that a server that
// never returns an empty page cannot hold a Mint forever.
const maxListPages = 100

// deleteNamed deletes every live key whose name is name, reading GET /keys
// page by page (offset paging) until a page comes back empty.
func (d *dev) deleteNamed(ctx context.Context, name string, admin keystore.Secret) error {
	var lost []string
	for offset, pages := 0, 0; ; pages++ {
		if pages == maxListPages {
			return fmt.Errorf("dev issuer: GET /keys returned more than %d pages", maxListPages)
		}
		page, err := d.listKeys(ctx, offset, admin)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			if k.Name == name && k.Hash != "" {
				lost = append(lost, k.Hash)
			}
		}
		offset += len(page)
	}
	for _, hash := range lost {
		if err := d.Revoke(ctx, RevokeRequest{KeyID: hash, Admin: admin}); err != nil {
			return fmt.Errorf("dev issuer: delete key %s, left by an earlier mint for the same rotation: %w", hash, err)
		}
	}
	return nil
}

func (d *dev) listKeys(ctx context.Context, offset int, admin keystore.Secret) ([]listedKey, error) {
	path := fmt.Sprintf("/keys?offset=%d", offset)
	resp, err := d.do(ctx, http.MethodGet, path, nil, admin)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError("GET", "/keys", resp)
	}
	var list struct {
		Data []listedKey `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDevResponse)).Decode(&list); err != nil {
		return nil, errors.New("dev issuer: GET /keys returned a body that is not the expected JSON")
	}
	return list.Data, nil
}

// Revoke deletes the key whose hash is req.KeyID. A key that is already gone
// (404) counts as revoked.
func (d *dev) Revoke(ctx context.Context, req RevokeRequest) error {
	if d.err != nil {
		return d.err
	}
	if req.KeyID == "" {
		return errors.New("dev issuer: revoke needs the key's hash")
	}
	path := "/keys/" + url.PathEscape(req.KeyID)
	resp, err := d.do(ctx, http.MethodDelete, path, nil, req.Admin)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode/100 == 2 {
		return nil
	}
	return statusError("DELETE", path, resp)
}

func (d *dev) do(ctx context.Context, method, path string, body io.Reader, admin keystore.Secret) (*http.Response, error) {
	u := *d.base
	path, query, _ := strings.Cut(path, "?")
	u.Path += path
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+admin.Reveal())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// url.Error names the URL, which holds no key.
		return nil, fmt.Errorf("dev issuer: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// statusError describes a failed response by its status and the error code
// in its body, if any, but never quotes the body itself. A 401 or 403
// rejects the management key, and any other 4xx but 408 and 429 rejects the
// request itself, so both match ErrMisconfigured. A 408, 429 or 5xx may
// pass when retried.
func statusError(method, path string, resp *http.Response) error {
	var e struct {
		Error struct {
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxDevResponse)).Decode(&e)
	msg := fmt.Sprintf("dev issuer: %s %s returned %d", method, path, resp.StatusCode)
	if code := strings.Trim(string(e.Error.Code), `"`); isErrorCode(code) {
		msg += " (" + code + ")"
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: the provider rejected the management key in keyturn:issuer-secret: %w", msg, ErrMisconfigured)
	}
	if s := resp.StatusCode; s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests {
		return fmt.Errorf("%s: the provider rejected the request, and a retry would send the same one: "+
			"check the issuer's base URL: %w", msg, ErrMisconfigured)
	}
	return errors.New(msg)
}

// isErrorCode reports whether s looks like a short provider error code, such
// as 401 or invalid_api_key, and so is safe to repeat in an error.
func isErrorCode(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || r == '.' || (r >= '0' && r <= '9') ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}
