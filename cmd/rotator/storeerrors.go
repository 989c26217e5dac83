package main

import (
	"context"
	"fmt"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

// notFoundError reports a SECRET argument that names no secret in the
// store, naming the store and where its URL came from, since a secret
// looked up in the wrong store is the usual cause.
func notFoundError(cmd, secretID string, s settings) error {
	return cli.WithCode(exitError, fmt.Errorf("%s: secret %s not found in store %s (%s)",
		cmd, secretID, s.store.Raw, storeOrigin(s))).
		WithHint("list the managed secrets with 'rotator status', or create this one with 'rotator add %s --provider NAME --base-url URL' (on AWS, Terraform creates secrets)", secretID)
}

// notManagedError reports a secret without the keyturn:provider tag. When
// its current value is a router client list it points at rotator client
// instead, since that secret is keyturn's too, only not a provider secret.
func notManagedError(ctx context.Context, store keystore.Store, cmd, secretID string) error {
	if isClientList(ctx, store, secretID) {
		clientCmd := "rotator client list"
		if secretID != clientkeys.DefaultSecretID {
			clientCmd += " --secret " + secretID
		}
		return cli.WithCode(exitError, fmt.Errorf("%s: secret %s is a router client list, not a provider secret: it has no %s tag", cmd, secretID, keystore.TagProvider)).
			WithHint("see its clients with '%s'; 'rotator help client' shows how to manage them", clientCmd)
	}
	return fmt.Errorf("%s: secret %s is not managed by keyturn: it has no %s tag", cmd, secretID, keystore.TagProvider)
}

// isClientList reports whether the AWSCURRENT value of secretID parses as
// a router client list. A value that cannot be read is not one.
func isClientList(ctx context.Context, store keystore.Store, secretID string) bool {
	v, err := store.Get(ctx, secretID, keystore.Current())
	if err != nil {
		return false
	}
	_, err = clientkeys.Parse([]byte(v.Value.Reveal()))
	return err == nil
}
