package storeurl

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr string
		dir     string
		region  string
		aws     bool
	}{
		{raw: "file:///var/lib/keyturn", dir: "/var/lib/keyturn"},
		{raw: "file:/var/lib/keyturn", dir: "/var/lib/keyturn"},
		{raw: "file:///tmp/a%20b", dir: "/tmp/a b"},
		{raw: "file:///tmp/x/../y/", dir: "/tmp/y"},
		{raw: "aws://us-east-1", aws: true, region: "us-east-1"},
		{raw: "aws://eu-central-2", aws: true, region: "eu-central-2"},
		{raw: "aws://", aws: true},
		{raw: "aws:///", aws: true},
		{raw: "file://host/x", wantErr: `file URLs take no host ("host")`},
		{raw: "file://./rel", wantErr: "file URLs take no host"},
		{raw: "file:rel/dir", wantErr: "must be an absolute path"},
		{raw: "/abs/dir", wantErr: "file:///ABSOLUTE/DIR"},
		{raw: "s3://bucket", wantErr: `unknown scheme "s3"`},
		{raw: "aws://US_EAST", wantErr: "is not an AWS region name"},
		{raw: "aws://us-east-1/path", wantErr: "names only a region"},
		{raw: "aws://key@us-east-1", wantErr: "names only a region"},
		{raw: "file:///x?mode=ro", wantErr: "takes only a path"},
		{raw: "file:///x#frag", wantErr: "takes only a path"},
		{raw: "%zz", wantErr: "invalid store URL"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := Parse(tt.raw)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed %q, want an error", tt.raw)
				}
				assertContains(t, err.Error(), tt.wantErr)
				assertContains(t, err.Error(), tt.raw)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (u.Kind == AWS) != tt.aws || u.Dir != tt.dir || u.Region != tt.region {
				t.Errorf("parsed %+v, want dir %q region %q aws %v", u, tt.dir, tt.region, tt.aws)
			}
			if u.Raw != tt.raw {
				t.Errorf("Raw = %q, want %q", u.Raw, tt.raw)
			}
		})
	}
}

func TestOpenFileStoreReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	_, _, err := Open(context.Background(), FileDir(dir), OpenOptions{})
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("open of a missing store: %v, want ErrNotFound", err)
	}

	st, closeStore, err := Open(context.Background(), FileDir(dir), OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	closeStore()
	if _, ok := st.(*keystore.FileStore); !ok {
		t.Errorf("Open returned %T, want *keystore.FileStore", st)
	}
	_, closeStore, err = Open(context.Background(), FileDir(dir), OpenOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	closeStore()
}

func TestOpenAWSUsesOpener(t *testing.T) {
	var region string
	opener := func(_ context.Context, r string) (keystore.Store, error) {
		region = r
		return nil, errors.New("no AWS in this test")
	}
	u, err := Parse("aws://eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(context.Background(), u, OpenOptions{OpenAWS: opener}); err == nil {
		t.Fatal("Open succeeded, want the opener's error")
	}
	if region != "eu-west-1" {
		t.Errorf("opener got region %q, want eu-west-1", region)
	}
}

func assertContains(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("error %q does not contain %q", got, want)
	}
}
