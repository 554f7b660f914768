package api

import (
	"context"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/store"
)

// Secrets. The gateway never holds the keyring: SetSecret is checked here (so a bad request
// costs no round trip) and forwarded with the value to the leader, which seals and stores
// it; DeleteSecret and ResealSecrets are forwarded too. ListSecrets reads names and times
// from PostgreSQL. No response, error or log line of this file carries a value: the checks
// report a value's length, never its content.

// checkSecretName validates a secret's name (the workflow-name rule).
func checkSecretName(name string) error {
	if name == "" {
		return fieldError("name", "is required: name the secret")
	}
	if !workflowName.MatchString(name) {
		return fieldError("name", "%q is not a secret name (want %s)", name, workflowName)
	}
	return nil
}

// SetSecret validates and forwards a secret to the leader.
func (s *Server) SetSecret(ctx context.Context, req *cairnv1.SetSecretRequest) (*cairnv1.SetSecretResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if err := checkSecretName(req.GetName()); err != nil {
		return nil, err
	}
	if problem := store.SecretValueProblem(req.GetValue()); problem != "" {
		return nil, fieldError("value", "%s", problem)
	}
	var resp *cairnv1.SetSecretResponse
	err := s.fwd.Do(ctx, "SetSecret", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.SetSecret(ctx, req)
		return err
	})
	return resp, err
}

// ListSecrets lists a namespace's secrets: names, key IDs and times.
func (s *Server) ListSecrets(ctx context.Context, req *cairnv1.ListSecretsRequest) (*cairnv1.ListSecretsResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	list, next, err := s.store.ListSecrets(ctx, ns, store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "secrets of "+ns)
	}
	if len(list) == 0 && req.GetPageToken() == "" {
		if err := s.checkNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	resp := &cairnv1.ListSecretsResponse{Secrets: make([]*cairnv1.Secret, 0, len(list)), NextPageToken: next}
	for _, m := range list {
		resp.Secrets = append(resp.Secrets, apiconv.Secret(m))
	}
	return resp, nil
}

// DeleteSecret validates and forwards a deletion.
func (s *Server) DeleteSecret(ctx context.Context, req *cairnv1.DeleteSecretRequest) (*cairnv1.DeleteSecretResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if err := checkSecretName(req.GetName()); err != nil {
		return nil, err
	}
	var resp *cairnv1.DeleteSecretResponse
	err := s.fwd.Do(ctx, "DeleteSecret", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.DeleteSecret(ctx, req)
		return err
	})
	return resp, err
}

// ResealSecrets forwards a reseal pass to the leader.
func (s *Server) ResealSecrets(ctx context.Context, req *cairnv1.ResealSecretsRequest) (*cairnv1.ResealSecretsResponse, error) {
	var resp *cairnv1.ResealSecretsResponse
	err := s.fwd.Do(ctx, "ResealSecrets", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.ResealSecrets(ctx, req)
		return err
	})
	return resp, err
}
