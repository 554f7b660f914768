package api

import (
	"context"
	"fmt"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/membership"
)

// ListWorkers lists the live workers from etcd, ordered by ID. Load figures the leader keeps
// in memory (running, queued, connected, last_seen_at) are not in etcd and stay at zero here.
func (s *Server) ListWorkers(ctx context.Context, req *cairnv1.ListWorkersRequest) (*cairnv1.ListWorkersResponse, error) {
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	query := fmt.Sprintf("workers|%q", req.GetPool())
	after, err := decodePageToken(req.GetPageToken(), query)
	if err != nil {
		return nil, err
	}
	members, err := s.cluster.Workers(ctx)
	if err != nil {
		return nil, toStatus(err, "workers")
	}
	if pool := req.GetPool(); pool != "" {
		kept := members[:0]
		for _, m := range members {
			if m.Pool == pool {
				kept = append(kept, m)
			}
		}
		members = kept
	}
	page, next := pageOf(members, func(m membership.Member) string { return m.ID }, after, size, query)
	resp := &cairnv1.ListWorkersResponse{Workers: make([]*cairnv1.Worker, 0, len(page)), NextPageToken: next}
	for _, m := range page {
		labels := m.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		resp.Workers = append(resp.Workers, &cairnv1.Worker{
			Id:        m.ID,
			Address:   m.Address,
			Pool:      m.Pool,
			Labels:    labels,
			Capacity:  int32(m.Capacity),
			Version:   m.Version,
			StartedAt: apiconv.Timestamp(m.Started),
		})
	}
	return resp, nil
}

// GetCluster reports the leader, the scheduler replicas and the number of live workers.
func (s *Server) GetCluster(ctx context.Context, _ *cairnv1.GetClusterRequest) (*cairnv1.GetClusterResponse, error) {
	c, err := s.cluster.Leadership(ctx)
	if err != nil {
		return nil, toStatus(err, "cluster")
	}
	members, err := s.cluster.Workers(ctx)
	if err != nil {
		return nil, toStatus(err, "workers")
	}
	c.Workers = int32(len(members))
	return &cairnv1.GetClusterResponse{Cluster: c}, nil
}
