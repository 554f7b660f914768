package schedapi

import (
	"context"
	"fmt"
	"strings"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/authz"
)

// Secrets. The leader is the only process that holds the keyring: it seals a value before
// the store sees it, and nothing here logs a request or puts a value in an error (values are
// described by their length). A leader without a keyring refuses every secret mutation and
// every workflow that references a secret, naming the setting to configure.

// errNoKeyring: this scheduler was started without a keyring.
var errNoKeyring = fmt.Errorf("%w: this scheduler has no secrets keyring: start every scheduler with --secrets-keyring-file "+
	"(CAIRN_SECRETS_KEYRING_FILE) or the keyring in CAIRN_SECRETS_KEYRING (docs/secrets.md)", errPrecondition)

// principal is the end user a gateway forwarded the call for (its token name, which
// authz trusts only from a gateway's certificate), "" when none: what updated_by records.
func principal(ctx context.Context) string {
	c, _ := authz.From(ctx)
	return c.Principal
}

// checkSecretName validates a secret's name.
func checkSecretName(name string) error {
	switch {
	case name == "":
		return invalidf("name is empty: name the secret")
	case !dag.ValidSecretName(name):
		return invalidf("name %q is not a secret name (want %s)", name, namespaceName)
	}
	return nil
}

// SetSecret seals a value under the active key and stores it.
func (s *Server) SetSecret(ctx context.Context, req *cairnv1.SetSecretRequest) (*cairnv1.SetSecretResponse, error) {
	resp, err := s.setSecret(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) setSecret(ctx context.Context, req *cairnv1.SetSecretRequest) (*cairnv1.SetSecretResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	if err := checkSecretName(req.GetName()); err != nil {
		return nil, err
	}
	if problem := store.SecretValueProblem(req.GetValue()); problem != "" {
		return nil, invalidf("value %s", problem)
	}
	if s.cfg.Keyring == nil {
		return nil, errNoKeyring
	}
	sealed, err := s.cfg.Keyring.Seal(ns, req.GetName(), []byte(req.GetValue()))
	if err != nil {
		return nil, fmt.Errorf("seal secret %s/%s: %w", ns, req.GetName(), err)
	}
	by := principal(ctx)
	m, created, err := s.cfg.Store.PutSecret(ctx, term.Epoch, ns, req.GetName(), sealed, by)
	if err != nil {
		return nil, err
	}
	s.log.Info("secret set", "namespace", ns, "secret", m.Name, "key_id", m.KeyID, "created", created, "by", authz.By(ctx))
	return &cairnv1.SetSecretResponse{Secret: apiconv.Secret(m), Created: created}, nil
}

// DeleteSecret deletes a secret. The keyring is not needed for it.
func (s *Server) DeleteSecret(ctx context.Context, req *cairnv1.DeleteSecretRequest) (*cairnv1.DeleteSecretResponse, error) {
	resp, err := s.deleteSecret(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) deleteSecret(ctx context.Context, req *cairnv1.DeleteSecretRequest) (*cairnv1.DeleteSecretResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	if err := checkSecretName(req.GetName()); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.DeleteSecret(ctx, term.Epoch, ns, req.GetName()); err != nil {
		return nil, s.namespaceOr(ctx, ns, err)
	}
	s.log.Info("secret deleted", "namespace", ns, "secret", req.GetName(), "by", authz.By(ctx))
	return &cairnv1.DeleteSecretResponse{}, nil
}

// ResealSecrets re-encrypts every stored value that is not under the active key.
func (s *Server) ResealSecrets(ctx context.Context, req *cairnv1.ResealSecretsRequest) (*cairnv1.ResealSecretsResponse, error) {
	resp, err := s.resealSecrets(ctx)
	return resp, s.toStatus(err)
}

func (s *Server) resealSecrets(ctx context.Context) (*cairnv1.ResealSecretsResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	k := s.cfg.Keyring
	if k == nil {
		return nil, errNoKeyring
	}
	res, err := s.cfg.Store.ResealSecrets(ctx, term.Epoch, k.Active(), k.Reseal)
	s.log.Info("secrets resealed", "active_key_id", k.Active(), "resealed", res.Resealed, "failed", res.Failed, "by", authz.By(ctx))
	if err != nil {
		if res.Failed > 0 {
			return nil, fmt.Errorf("%w: %d secret(s) resealed under key %s; %d could not be opened and were left as they are: %v",
				errPrecondition, res.Resealed, k.Active(), res.Failed, err)
		}
		return nil, err
	}
	return &cairnv1.ResealSecretsResponse{ActiveKeyId: k.Active(), Resealed: int32(res.Resealed)}, nil
}

// checkSecretRefs is the apply-time check of a workflow's secret references against its
// namespace: a reference to a secret the namespace does not hold is a validation error at
// the referencing task (one per task and secret), and any reference at all needs a keyring.
func (s *Server) checkSecretRefs(ctx context.Context, ns string, wf *dag.Workflow) error {
	names := wf.Secrets()
	if len(names) == 0 {
		return nil
	}
	if s.cfg.Keyring == nil {
		return fmt.Errorf("%w (the workflow references secrets: %s)", errNoKeyring, strings.Join(names, ", "))
	}
	missing, err := s.cfg.Store.MissingSecrets(ctx, ns, names)
	if err != nil || len(missing) == 0 {
		return err
	}
	if _, err := s.cfg.Store.GetNamespace(ctx, ns); err != nil {
		return err // a namespace that does not exist is reported as such
	}
	gone := map[string]bool{}
	for _, n := range missing {
		gone[n] = true
	}
	var list dag.ErrorList
	for _, t := range wf.Tasks {
		for _, n := range t.Secrets {
			if gone[n] {
				list = append(list, &dag.Error{Line: t.Pos.Line, Column: t.Pos.Column, TaskID: t.ID, Kind: dag.ErrInvalid,
					Msg: fmt.Sprintf("secret %q is not defined in namespace %s: set it first (cairnctl secrets set %s -n %s)", n, ns, n, ns)})
			}
		}
	}
	return list
}
