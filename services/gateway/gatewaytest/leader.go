package gatewaytest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
)

// leader is the stand-in SchedulerService.
type leader struct {
	cairnv1.UnimplementedSchedulerServiceServer
	st    *store.Store
	epoch atomic.Int64 // 0 while not leading
	calls atomic.Int64
	// workers is what ListWorkers answers (Cluster.SetWorkerLoads); nil: none attached.
	workers atomic.Pointer[[]*cairnv1.Worker]
}

// ListWorkers answers the loads set by Cluster.SetWorkerLoads, filtered by pool, as the real
// leader answers its attached workers.
func (l *leader) ListWorkers(_ context.Context, req *cairnv1.ListWorkersRequest) (*cairnv1.ListWorkersResponse, error) {
	if _, err := l.lead(); err != nil {
		return nil, err
	}
	resp := &cairnv1.ListWorkersResponse{LoadKnown: true}
	if ws := l.workers.Load(); ws != nil {
		for _, w := range *ws {
			if req.GetPool() == "" || w.GetPool() == req.GetPool() {
				resp.Workers = append(resp.Workers, w)
			}
		}
	}
	return resp, nil
}

func (l *leader) lead() (int64, error) {
	l.calls.Add(1)
	e := l.epoch.Load()
	if e == 0 {
		return 0, status.Error(codes.Unavailable, "not the leader")
	}
	return e, nil
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrNotEmpty), errors.Is(err, store.ErrInvalidArgument):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, store.ErrStaleEpoch):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (l *leader) ApplyWorkflow(ctx context.Context, req *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	wf, err := dag.Parse("", []byte(req.GetYaml()), dag.DefaultLimits())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	v, created, err := l.st.PutVersion(ctx, epoch, nsOf(req), wf.Name, wf.Description, req.GetYaml(), nil)
	if err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.ApplyWorkflowResponse{Created: created, Workflow: &cairnv1.Workflow{
		Namespace: v.Namespace, Name: v.Workflow, Version: int64(v.Version), ContentHash: v.Hash, Description: wf.Description, Yaml: v.YAML,
	}}, nil
}

func (l *leader) StartRun(ctx context.Context, req *cairnv1.StartRunRequest) (*cairnv1.StartRunResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	v, err := l.st.GetVersion(ctx, nsOf(req), req.GetWorkflow(), 0)
	if err != nil {
		return nil, storeErr(err)
	}
	wf, err := dag.Parse("", []byte(v.YAML), dag.DefaultLimits())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	params, err := wf.ResolveParams(req.GetParams())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ids := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		ids[i] = t.ID
	}
	r, created, err := l.st.CreateRun(ctx, epoch, model.Run{
		ID: uuid.New(), Namespace: v.Namespace, Workflow: v.Workflow, Version: v.Version, Params: params,
		IdempotencyKey: req.GetIdempotencyKey(), Trigger: model.TriggerManual,
	}, ids)
	if err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.StartRunResponse{Run: briefRun(r), Existing: !created}, nil
}

func (l *leader) CancelRun(ctx context.Context, req *cairnv1.CancelRunRequest) (*cairnv1.CancelRunResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetRunId())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "run_id: not a UUID")
	}
	d, err := l.st.GetRun(ctx, nsOf(req), id)
	if err != nil {
		return nil, storeErr(err)
	}
	if !d.Run.State.Terminal() {
		var b store.Batch
		b.Add(store.RunTransition{RunID: id, From: d.Run.State, To: model.RunCancelled, Error: req.GetReason()},
			store.AppendEvent{Event: model.Event{RunID: id, Kind: model.EventRunState, From: string(d.Run.State),
				To: string(model.RunCancelled), Message: req.GetReason()}})
		res, err := l.st.Apply(ctx, epoch, &b)
		if err != nil {
			return nil, storeErr(err)
		}
		if res[0] != nil {
			return nil, status.Error(codes.Aborted, res[0].Error())
		}
		if d, err = l.st.GetRun(ctx, nsOf(req), id); err != nil {
			return nil, storeErr(err)
		}
	}
	return &cairnv1.CancelRunResponse{Run: briefRun(d.Run)}, nil
}

func (l *leader) CreateNamespace(ctx context.Context, req *cairnv1.CreateNamespaceRequest) (*cairnv1.CreateNamespaceResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	n, err := l.st.CreateNamespace(ctx, epoch, model.Namespace{Name: req.GetNamespace(), Description: req.GetDescription()})
	if err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.CreateNamespaceResponse{Namespace: &cairnv1.Namespace{Name: n.Name, Description: n.Description}}, nil
}

func (l *leader) DeleteNamespace(ctx context.Context, req *cairnv1.DeleteNamespaceRequest) (*cairnv1.DeleteNamespaceResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	if err := l.st.DeleteNamespace(ctx, epoch, req.GetNamespace()); err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.DeleteNamespaceResponse{}, nil
}

// keyring seals the stand-in leader's secrets (the real leader's comes from its configuration).
var keyring = func() *secretbox.Keyring {
	line, err := secretbox.NewKeyLine("test")
	if err != nil {
		panic(err)
	}
	k, err := secretbox.Open([]byte(line))
	if err != nil {
		panic(err)
	}
	return k
}()

// SetSecret seals and stores a secret as the real leader does (its checks are the gateway's).
func (l *leader) SetSecret(ctx context.Context, req *cairnv1.SetSecretRequest) (*cairnv1.SetSecretResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	sealed, err := keyring.Seal(nsOf(req), req.GetName(), []byte(req.GetValue()))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	m, created, err := l.st.PutSecret(ctx, epoch, nsOf(req), req.GetName(), sealed, "")
	if err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.SetSecretResponse{Secret: apiconv.Secret(m), Created: created}, nil
}

// DeleteSecret deletes a secret.
func (l *leader) DeleteSecret(ctx context.Context, req *cairnv1.DeleteSecretRequest) (*cairnv1.DeleteSecretResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	if err := l.st.DeleteSecret(ctx, epoch, nsOf(req), req.GetName()); err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.DeleteSecretResponse{}, nil
}

// ResealSecrets reseals under the stand-in's keyring (a no-op: it has one key).
func (l *leader) ResealSecrets(ctx context.Context, _ *cairnv1.ResealSecretsRequest) (*cairnv1.ResealSecretsResponse, error) {
	epoch, err := l.lead()
	if err != nil {
		return nil, err
	}
	res, err := l.st.ResealSecrets(ctx, epoch, keyring.Active(), keyring.Reseal)
	if err != nil {
		return nil, storeErr(err)
	}
	return &cairnv1.ResealSecretsResponse{ActiveKeyId: keyring.Active(), Resealed: int32(res.Resealed)}, nil
}

// OpenSecret reads a secret the stand-in leader stored and unseals it (tests check what was
// stored).
func (c *Cluster) OpenSecret(ns, name string) (string, bool) {
	c.t.Helper()
	got, err := c.Store.GetSealedSecrets(context.Background(), ns, []string{name})
	if err != nil {
		c.t.Fatalf("gatewaytest: %v", err)
	}
	v, ok := got[name]
	if !ok {
		return "", false
	}
	pt, err := keyring.Unseal(ns, name, v)
	if err != nil {
		c.t.Fatalf("gatewaytest: %v", err)
	}
	return string(pt), true
}

// nsOf is a request's namespace, the default one when it names none.
func nsOf(req any) string {
	if r, ok := req.(interface{ GetNamespace() string }); ok && r.GetNamespace() != "" {
		return r.GetNamespace()
	}
	return model.DefaultNamespace
}

func briefRun(r model.Run) *cairnv1.Run {
	return &cairnv1.Run{
		RunId: r.ID.String(), Namespace: r.Namespace, Workflow: r.Workflow, WorkflowVersion: int64(r.Version),
		State:          cairnv1.RunState(cairnv1.RunState_value["RUN_STATE_"+string(r.State)]),
		Params:         r.Params,
		IdempotencyKey: r.IdempotencyKey, Reason: r.Error,
	}
}
