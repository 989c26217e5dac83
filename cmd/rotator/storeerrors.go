package main

import (
	"fmt"

	"github.com/keyturn/keyturn/keystore"
)

// notFoundError reports a SECRET argument that names no secret in the
// store, naming the store and where its URL came from, since a secret
// looked up in the wrong store is the usual cause.
func notFoundError(cmd, secretID string, s settings) error {
	return withCode(exitError, fmt.Errorf("%s: secret %s not found in store %s (%s)",
		cmd, secretID, s.store.raw, storeOrigin(s))).
		withHint("list the managed secrets with 'rotator status', or create this one with 'rotator add %s --provider NAME --base-url URL' (on AWS, Terraform creates secrets)", secretID)
}

func notManagedError(cmd, secretID string) error {
	return fmt.Errorf("%s: secret %s is not managed by keyturn: it has no %s tag", cmd, secretID, keystore.TagProvider)
}
