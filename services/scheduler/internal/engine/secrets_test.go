package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// TestAttemptSecretsOnlyForTheAssignedWorker: an assignment carries the placeholders of its
// task's secrets, never a value; the engine tells a worker which secrets it may have only for
// an attempt assigned to it on its current stream, with its current token — every name of
// the task's definition, branches not rendered included — and refuses any other asker.
func TestAttemptSecretsOnlyForTheAssignedWorker(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(`name: sec
params: {loud: ""}
tasks:
  - id: a
    type: shell
    command: [env]
    env:
      T: '{{ secret "tok" }}'
      U: '{{ if .params.loud }}{{ secret "other" }}{{ end }}'
`)
	w1 := h.worker("w1", "default", 1, nil, nil)
	w2 := h.worker("w2", "default", 1, nil, nil)
	w1.credits(1)
	id := h.startRun(wf, nil)
	a := w1.next()
	if len(a.Secrets) != 1 || a.Secrets[0].Name != "tok" || !a.Secrets[0].Valid() || a.Spec.Shell.Env["T"] != a.Secrets[0].Placeholder {
		t.Fatalf("assignment secrets %+v, env %v; want tok's placeholder in T", a.Secrets, a.Spec.Shell.Env)
	}
	ctx := context.Background()
	info, err := h.eng.AttemptSecrets(ctx, w1.sess, a.AttemptID.String(), a.Token)
	if err != nil || info.Namespace != model.DefaultNamespace || info.TaskID != "a" || info.RunID != id ||
		!slices.Equal(info.Names, []string{"other", "tok"}) {
		t.Fatalf("the assigned worker: %+v %v", info, err)
	}
	for what, ask := range map[string]func() error{
		"another worker": func() error {
			_, err := h.eng.AttemptSecrets(ctx, w2.sess, a.AttemptID.String(), a.Token)
			return err
		},
		"another token": func() error {
			_, err := h.eng.AttemptSecrets(ctx, w1.sess, a.AttemptID.String(), a.Token+1)
			return err
		},
		"another attempt id": func() error {
			_, err := h.eng.AttemptSecrets(ctx, w1.sess, uuid.NewString(), a.Token)
			return err
		},
		"a session that is not attached": func() error {
			s := &engine.Session{WorkerID: "w1", Pool: "default", Capacity: 1, Out: make(chan engine.Outbound, 1), Kick: func(error) {}}
			_, err := h.eng.AttemptSecrets(ctx, s, a.AttemptID.String(), a.Token)
			return err
		},
	} {
		if err := ask(); !errors.Is(err, engine.ErrNotYourAttempt) {
			t.Errorf("%s: %v, want ErrNotYourAttempt", what, err)
		}
	}

	// The worker reconnects: the old stream is refused, the new one answered.
	old := w1.sess
	w1b := h.worker("w1", "default", 1, []engine.RunningAttempt{{AttemptID: a.AttemptID.String(), Token: a.Token}}, nil)
	if _, err := h.eng.AttemptSecrets(ctx, old, a.AttemptID.String(), a.Token); !errors.Is(err, engine.ErrNotYourAttempt) {
		t.Errorf("the replaced stream: %v", err)
	}
	if _, err := h.eng.AttemptSecrets(ctx, w1b.sess, a.AttemptID.String(), a.Token); err != nil {
		t.Errorf("the new stream: %v", err)
	}

	// Once the attempt is over, nobody gets its secrets.
	w1b.started(a)
	if ack := w1b.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("result: %+v", ack)
	}
	h.waitRun(id)
	if _, err := h.eng.AttemptSecrets(ctx, w1b.sess, a.AttemptID.String(), a.Token); !errors.Is(err, engine.ErrNotYourAttempt) {
		t.Errorf("after the attempt ended: %v", err)
	}
	assertInvariants(t, h.st, id)
}
