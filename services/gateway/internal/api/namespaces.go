package api

import (
	"context"
	"errors"
	"slices"
	"unicode/utf8"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/gateway/internal/auth"
)

// checkNamespaceName validates the namespace a NamespaceService request names; required is
// false where empty means the default namespace.
func checkNamespaceName(name string, required bool) (string, error) {
	if name == "" {
		if required {
			return "", fieldError("namespace", "is required")
		}
		return model.DefaultNamespace, nil
	}
	if !workflowName.MatchString(name) {
		return "", fieldError("namespace", "%q is not a namespace name (want %s)", name, workflowName)
	}
	return name, nil
}

// CreateNamespace validates and forwards a creation.
func (s *Server) CreateNamespace(ctx context.Context, req *cairnv1.CreateNamespaceRequest) (*cairnv1.CreateNamespaceResponse, error) {
	if _, err := checkNamespaceName(req.GetNamespace(), true); err != nil {
		return nil, err
	}
	if d := req.GetDescription(); len(d) > store.MaxNamespaceDescription {
		return nil, fieldError("description", "is %d bytes long, at most %d allowed", len(d), store.MaxNamespaceDescription)
	} else if !utf8.ValidString(d) {
		return nil, fieldError("description", "is not valid UTF-8")
	}
	var resp *cairnv1.CreateNamespaceResponse
	err := s.fwd.Do(ctx, "CreateNamespace", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.CreateNamespace(ctx, req)
		return err
	})
	return resp, err
}

// ListNamespaces lists the namespaces by name. A token limited to some namespaces gets those
// that exist, in one page: paging over every namespace and filtering would put names it may
// not see in its page tokens.
func (s *Server) ListNamespaces(ctx context.Context, req *cairnv1.ListNamespacesRequest) (*cairnv1.ListNamespacesResponse, error) {
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if p, ok := auth.FromContext(ctx); ok && !p.Grants.AllNamespaces() {
		if req.GetPageToken() != "" {
			return nil, fieldError("page_token", "a token limited to some namespaces lists them in one page")
		}
		names := slices.Clone(p.Grants.Namespaces)
		slices.Sort(names)
		resp := &cairnv1.ListNamespacesResponse{Namespaces: []*cairnv1.Namespace{}}
		for _, name := range names {
			n, err := s.store.GetNamespace(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, toStatus(err, "namespace "+name)
			}
			resp.Namespaces = append(resp.Namespaces, apiconv.Namespace(n))
		}
		return resp, nil
	}
	ns, next, err := s.store.ListNamespaces(ctx, store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "namespaces")
	}
	resp := &cairnv1.ListNamespacesResponse{Namespaces: make([]*cairnv1.Namespace, 0, len(ns)), NextPageToken: next}
	for _, n := range ns {
		resp.Namespaces = append(resp.Namespaces, apiconv.Namespace(n))
	}
	return resp, nil
}

// GetNamespace returns one namespace.
func (s *Server) GetNamespace(ctx context.Context, req *cairnv1.GetNamespaceRequest) (*cairnv1.GetNamespaceResponse, error) {
	name, err := checkNamespaceName(req.GetNamespace(), false)
	if err != nil {
		return nil, err
	}
	n, err := s.store.GetNamespace(ctx, name)
	if err != nil {
		return nil, toStatus(err, "namespace "+name)
	}
	return &cairnv1.GetNamespaceResponse{Namespace: apiconv.Namespace(n)}, nil
}

// DeleteNamespace validates and forwards a deletion; the leader refuses it while the
// namespace holds anything.
func (s *Server) DeleteNamespace(ctx context.Context, req *cairnv1.DeleteNamespaceRequest) (*cairnv1.DeleteNamespaceResponse, error) {
	if _, err := checkNamespaceName(req.GetNamespace(), true); err != nil {
		return nil, err
	}
	var resp *cairnv1.DeleteNamespaceResponse
	err := s.fwd.Do(ctx, "DeleteNamespace", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.DeleteNamespace(ctx, req)
		return err
	})
	return resp, err
}
