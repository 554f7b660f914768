package api

import (
	"context"
	"fmt"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/membership"
)

// LoadTimeout bounds the question ListWorkers asks the leader. Past it (or with no leader)
// the list is answered from etcd alone, with load_known false: listing workers is how an
// operator looks at a cluster in trouble, so it must not wait out a failover.
const LoadTimeout = 2 * time.Second

// ListWorkers lists the live workers from etcd, ordered by ID, with the load the leader keeps
// in memory (running, queued, connected, draining, last_seen_at) when it answers.
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
	if len(page) == 0 {
		return resp, nil
	}
	loads, known := s.workerLoads(ctx, req.GetPool())
	resp.LoadKnown = known
	for _, m := range page {
		labels := m.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		w := &cairnv1.Worker{
			Id:        m.ID,
			Address:   m.Address,
			Pool:      m.Pool,
			Labels:    labels,
			Capacity:  int32(m.Capacity),
			Version:   m.Version,
			StartedAt: apiconv.Timestamp(m.Started),
		}
		// A worker registered in etcd but not attached to the leader (starting, reconnecting
		// after a failover) is listed with connected false and no load.
		if l, ok := loads[m.ID]; ok {
			w.Running, w.Queued, w.Connected, w.Draining, w.LastSeenAt = l.GetRunning(), l.GetQueued(), true, l.GetDraining(), l.GetLastSeenAt()
		}
		resp.Workers = append(resp.Workers, w)
	}
	return resp, nil
}

// workerLoads asks the leader for the load of its attached workers, by worker ID. known is
// false when the leader could not be asked within LoadTimeout.
func (s *Server) workerLoads(ctx context.Context, pool string) (loads map[string]*cairnv1.Worker, known bool) {
	ctx, cancel := context.WithTimeout(ctx, LoadTimeout)
	defer cancel()
	var resp *cairnv1.ListWorkersResponse
	err := s.fwd.Do(ctx, "ListWorkers", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.ListWorkers(ctx, &cairnv1.ListWorkersRequest{Pool: pool})
		return err
	})
	if err != nil {
		s.log.Debug("worker load unknown: the leader did not answer", "err", err)
		return nil, false
	}
	loads = make(map[string]*cairnv1.Worker, len(resp.GetWorkers()))
	for _, w := range resp.GetWorkers() {
		loads[w.GetId()] = w
	}
	return loads, true
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
