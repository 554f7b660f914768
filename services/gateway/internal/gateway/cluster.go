package gateway

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/membership"
)

// syncWait bounds how long a request waits for the membership watcher's first list.
const syncWait = 2 * time.Second

// etcdCluster reads workers (through the membership watcher) and the scheduler replicas (the
// election's candidate keys) from etcd. It implements api.Cluster.
type etcdCluster struct {
	client   *clientv3.Client
	election string // <prefix>scheduler/leader
	workers  *membership.Watcher
}

func (c *etcdCluster) Workers(ctx context.Context) ([]membership.Member, error) {
	t := time.NewTimer(syncWait)
	defer t.Stop()
	select {
	case <-c.workers.Synced():
		return c.workers.Members(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, status.Errorf(codes.Unavailable, "workers: the worker list has not been read from etcd yet (etcd unreachable?)")
	}
}

// Leadership lists the candidates of the election: each one's key holds its gRPC address, and
// the candidate with the lowest create revision leads (its create revision is the epoch).
func (c *etcdCluster) Leadership(ctx context.Context) (*cairnv1.Cluster, error) {
	resp, err := c.client.Get(ctx, c.election+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "cluster: read the scheduler election from etcd: %v", err)
	}
	out := &cairnv1.Cluster{Schedulers: []*cairnv1.SchedulerReplica{}}
	for i, kv := range resp.Kvs {
		r := &cairnv1.SchedulerReplica{Id: path.Base(string(kv.Key)), Address: string(kv.Value), Leader: i == 0}
		if i == 0 {
			out.LeaderId, out.LeaderAddress, out.Epoch = r.Id, r.Address, kv.CreateRevision
		}
		out.Schedulers = append(out.Schedulers, r)
	}
	return out, nil
}

// checkEtcd is the readiness check of etcd: a linearizable read needs a quorum.
func checkEtcd(client *clientv3.Client, prefix string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if _, err := client.Get(ctx, prefix+"readyz", clientv3.WithCountOnly()); err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		return nil
	}
}
