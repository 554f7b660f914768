package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/workerapi"
)

// secretSource answers workers' secrets requests (workerapi.SecretSource) from the store,
// unsealing with the scheduler's keyring. It runs in the stream handlers' goroutines, never
// in the engine's loop.
type secretSource struct {
	store   *store.Store
	keyring *secretbox.Keyring // nil: no keyring configured
}

// errNoKeyring: the scheduler was started without a keyring, so no value can be opened.
var errNoKeyring = errors.New("the leader has no secrets keyring (start every scheduler with --secrets-keyring-file or CAIRN_SECRETS_KEYRING)")

func (s secretSource) Values(ctx context.Context, ns string, names []string) (map[string]string, error) {
	if s.keyring == nil {
		return nil, errNoKeyring
	}
	sealed, err := s.store.GetSealedSecrets(ctx, ns, names)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", workerapi.ErrSecretsTransient, err)
	}
	out := make(map[string]string, len(sealed))
	for name, v := range sealed {
		pt, err := s.keyring.Unseal(ns, name, v)
		if err != nil {
			// The keyring lacks the value's key, or the row was altered: an operator must fix it.
			return nil, fmt.Errorf("secret %q: %w", name, err)
		}
		out[name] = string(pt)
		clear(pt)
	}
	return out, nil
}
