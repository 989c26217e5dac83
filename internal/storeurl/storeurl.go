// Package storeurl parses the store URLs that keyturn's commands take
// (file:///ABS/DIR for the file store, aws://REGION for AWS Secrets
// Manager) and opens the store one names.
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"

	"github.com/keyturn/keyturn/keystore"
)

// Kind is the store a URL selects.
type Kind int

const (
	// File is the age-encrypted file store.
	File Kind = iota
	// AWS is AWS Secrets Manager.
	AWS
)

// URL is a parsed store URL.
type URL struct {
	// Raw is the URL as given, for messages.
	Raw  string
	Kind Kind
	// Dir is the file store's directory, absolute and cleaned.
	Dir string
	// Region is the AWS region, or "" for the AWS SDK's default region.
	Region string
}

// AcceptedForms lists the store URL forms, for errors and hints.
const AcceptedForms = "file:///ABSOLUTE/DIR, aws://REGION (such as aws://us-east-1) or aws:// (the AWS SDK's default region)"

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// Parse reads a store URL. A file URL must carry an absolute path and no
// host. Relative directories are rejected, because a service manager may
// start the command in another working directory.
func Parse(raw string) (URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return URL{}, fmt.Errorf("invalid store URL %q: use %s", raw, AcceptedForms)
	}
	switch u.Scheme {
	case "file":
		return parseFile(raw, u)
	case "aws":
		return parseAWS(raw, u)
	}
	return URL{}, fmt.Errorf("invalid store URL %q: unknown scheme %q: use %s", raw, u.Scheme, AcceptedForms)
}

// FileDir returns the URL of the file store in dir, which must be absolute.
func FileDir(dir string) URL {
	return URL{Raw: "file://" + dir, Kind: File, Dir: dir}
}

func parseFile(raw string, u *url.URL) (URL, error) {
	if u.Host != "" {
		return URL{}, fmt.Errorf("invalid store URL %q: file URLs take no host (%q): use file:///ABSOLUTE/DIR with three slashes", raw, u.Host)
	}
	if u.Opaque != "" || !filepath.IsAbs(u.Path) {
		return URL{}, fmt.Errorf("invalid store URL %q: the directory must be an absolute path, such as file:///var/lib/keyturn/store or file://$PWD/store", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return URL{}, fmt.Errorf("invalid store URL %q: a file URL takes only a path: use %s", raw, AcceptedForms)
	}
	return URL{Raw: raw, Kind: File, Dir: filepath.Clean(u.Path)}, nil
}

func parseAWS(raw string, u *url.URL) (URL, error) {
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return URL{}, fmt.Errorf("invalid store URL %q: an aws URL names only a region: use %s", raw, AcceptedForms)
	}
	if u.Host != "" && !regionPattern.MatchString(u.Host) {
		return URL{}, fmt.Errorf("invalid store URL %q: %q is not an AWS region name such as us-east-1", raw, u.Host)
	}
	return URL{Raw: raw, Kind: AWS, Region: u.Host}, nil
}

// OpenOptions configures Open.
type OpenOptions struct {
	// Identity is the file store's age identity file, or "" for
	// DIR/identity.age.
	Identity string
	// Create lets Open create a file store that does not exist yet.
	// Readers such as the router leave it false, so that a mistyped URL is
	// an error rather than a new, empty store.
	Create bool
	// OpenAWS opens the AWS store, for tests. Nil is keystore.OpenAWS.
	OpenAWS func(ctx context.Context, region string) (keystore.Store, error)
}

// Open opens the store u names, and returns it with the function that
// closes it. Errors are the stores' own, unwrapped, so that callers can
// word them with errors.Is against keystore's sentinels.
func Open(ctx context.Context, u URL, opts OpenOptions) (keystore.Store, func(), error) {
	if u.Kind == AWS {
		open := opts.OpenAWS
		if open == nil {
			open = func(ctx context.Context, region string) (keystore.Store, error) {
				return keystore.OpenAWS(ctx, region)
			}
		}
		st, err := open(ctx, u.Region)
		if err != nil {
			return nil, nil, err
		}
		return st, func() {}, nil
	}
	fst, err := keystore.OpenFile(keystore.FileOptions{Dir: u.Dir, IdentityPath: opts.Identity, Create: opts.Create})
	if err != nil {
		return nil, nil, err
	}
	return fst, func() { _ = fst.Close() }, nil
}
