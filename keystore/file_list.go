package keystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// List returns the description of every secret it can read, sorted by id.
// A secret file that cannot be read hides no other secret: List leaves it
// out and returns, with the descriptions it read, an error that joins one
// *Error per such file; see Store.
func (s *FileStore) List(ctx context.Context) ([]Description, error) {
	const op = "ListSecrets"
	if err := s.checkOpen(op, ""); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.secrets)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a store that has an identity but no secret yet
	}
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrUnavailable, Err: err,
			Msg: fmt.Sprintf("cannot list the secrets directory %s: run as a user who can read it, such as the store's owner", s.secrets)}
	}

	var out []Description
	var failed []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !isSecretFileName(e.Name()) {
			continue
		}
		r, err := s.readEntry(op, e.Name())
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted since ReadDir
		case err != nil:
			failed = append(failed, err)
		default:
			out = append(out, r.describe())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SecretID < out[j].SecretID })
	return out, errors.Join(failed...)
}

// readEntry reads the secret file name in the secrets directory and checks
// that the id inside matches the name. Its errors name the secret id that
// the file name encodes, and for a hashed name, whose id is only inside the
// file, the file's path.
func (s *FileStore) readEntry(op, name string) (*secretRecord, error) {
	id, _ := decodeFileName(name)
	path := filepath.Join(s.secrets, name)
	r, err := s.readPath(op, id, path)
	if err != nil {
		return nil, err
	}
	if encodeFileName(r.ID) != name {
		return nil, Errorf(ErrUnavailable, op, r.ID,
			"secret file %s contains secret %s: a file was renamed or copied by hand, so move it back", path, r.ID)
	}
	return r, nil
}
