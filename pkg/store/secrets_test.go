package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
)

// keyring builds a keyring of fresh keys with the given IDs, the first active.
func keyring(t *testing.T, ids ...string) (*secretbox.Keyring, []string) {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := secretbox.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	k, err := secretbox.Open([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return k, lines
}

func (e *env) putSecret(k *secretbox.Keyring, ns, name, value string) {
	e.t.Helper()
	sealed, err := k.Seal(ns, name, []byte(value))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.s.PutSecret(e.ctx, epoch, ns, name, sealed, "tester"); err != nil {
		e.t.Fatal(err)
	}
}

// open reads a secret back and unseals it.
func (e *env) openSecret(k *secretbox.Keyring, ns, name string) (string, bool) {
	e.t.Helper()
	got, err := e.s.GetSealedSecrets(e.ctx, ns, []string{name})
	if err != nil {
		e.t.Fatal(err)
	}
	v, ok := got[name]
	if !ok {
		return "", false
	}
	pt, err := k.Unseal(ns, name, v)
	if err != nil {
		e.t.Fatalf("unseal %s/%s: %v", ns, name, err)
	}
	return string(pt), true
}

// TestSecretLifecycle: a secret is created, replaced, listed (metadata only), read sealed,
// checked for by name, and deleted; the value is never stored in clear.
func TestSecretLifecycle(t *testing.T) {
	e := newEnv(t)
	k, _ := keyring(t, "k1")
	e.namespace("team-a")
	const value = "hunter2-correct-horse"

	sealed, err := k.Seal("team-a", "db.password", []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	m, created, err := e.s.PutSecret(e.ctx, epoch, "team-a", "db.password", sealed, "alice")
	if err != nil || !created || m.Namespace != "team-a" || m.Name != "db.password" || m.KeyID != "k1" || m.UpdatedBy != "alice" ||
		m.CreatedAt.IsZero() || !m.UpdatedAt.Equal(m.CreatedAt) {
		t.Fatalf("first put: %+v created=%v %v", m, created, err)
	}
	time.Sleep(10 * time.Millisecond)
	sealed2, _ := k.Seal("team-a", "db.password", []byte(value+"-v2"))
	m2, created, err := e.s.PutSecret(e.ctx, epoch, "team-a", "db.password", sealed2, "bob")
	if err != nil || created || !m2.CreatedAt.Equal(m.CreatedAt) || !m2.UpdatedAt.After(m.UpdatedAt) || m2.UpdatedBy != "bob" {
		t.Fatalf("second put: %+v created=%v %v (first %+v)", m2, created, err, m)
	}
	if v, ok := e.openSecret(k, "team-a", "db.password"); !ok || v != value+"-v2" {
		t.Fatalf("read back %q %v", v, ok)
	}
	// Not in another namespace.
	if _, ok := e.openSecret(k, defNS, "db.password"); ok {
		t.Fatal("the secret of team-a is visible from default")
	}

	e.putSecret(k, "team-a", "api-token", "tok-0123456789")
	missing, err := e.s.MissingSecrets(e.ctx, "team-a", []string{"nope", "api-token", "db.password", "nope", "also-missing"})
	if err != nil || !slices.Equal(missing, []string{"also-missing", "nope"}) {
		t.Fatalf("missing %q %v", missing, err)
	}
	if missing, err := e.s.MissingSecrets(e.ctx, defNS, []string{"api-token"}); err != nil || !slices.Equal(missing, []string{"api-token"}) {
		t.Fatalf("missing in default %q %v", missing, err)
	}

	// Listing pages by name.
	list, next, err := e.s.ListSecrets(e.ctx, "team-a", store.PageRequest{Size: 1})
	if err != nil || len(list) != 1 || list[0].Name != "api-token" || next == "" {
		t.Fatalf("page 1: %+v %q %v", list, next, err)
	}
	list, next, err = e.s.ListSecrets(e.ctx, "team-a", store.PageRequest{Size: 1, Token: next})
	if err != nil || len(list) != 1 || list[0].Name != "db.password" || next != "" {
		t.Fatalf("page 2: %+v %q %v", list, next, err)
	}
	if _, _, err := e.s.ListSecrets(e.ctx, defNS, store.PageRequest{Token: next + "x"}); !errors.Is(err, store.ErrInvalidPageToken) {
		t.Fatalf("bad token: %v", err)
	}

	// Nothing in any column holds the value, its encodings aside (the end-to-end test checks
	// those over every table).
	var dump []byte
	if err := e.pool.QueryRow(e.ctx, `SELECT convert_to(string_agg(s::text, ','), 'UTF8') FROM secrets s`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dump, []byte(value)) || bytes.Contains(dump, []byte("tok-0123456789")) {
		t.Fatalf("a value is stored in clear: %s", dump)
	}

	// Delete.
	if err := e.s.DeleteSecret(e.ctx, epoch, "team-a", "api-token"); err != nil {
		t.Fatal(err)
	}
	wantIs(t, e.s.DeleteSecret(e.ctx, epoch, "team-a", "api-token"), store.ErrNotFound)
	if _, ok := e.openSecret(k, "team-a", "api-token"); ok {
		t.Fatal("deleted secret still read")
	}

	// Bad input, unknown namespace, stale epoch.
	_, _, err = e.s.PutSecret(e.ctx, epoch, "nope", "x.y", sealed, "")
	wantIs(t, err, store.ErrNotFound)
	if !strings.Contains(err.Error(), "namespace nope") {
		t.Fatalf("unknown namespace: %v", err)
	}
	_, _, err = e.s.PutSecret(e.ctx, epoch, "team-a", "Bad Name", sealed, "")
	wantIs(t, err, store.ErrInvalidArgument)
	_, _, err = e.s.PutSecret(e.ctx, epoch, "team-a", "x", secretbox.Sealed{KeyID: "k1"}, "")
	wantIs(t, err, store.ErrInvalidArgument)
	_, _, err = e.s.PutSecret(e.ctx, epoch-1, "team-a", "x", sealed, "")
	wantIs(t, err, store.ErrStaleEpoch)
	wantIs(t, e.s.DeleteSecret(e.ctx, epoch-1, "team-a", "db.password"), store.ErrStaleEpoch)
}

// TestNamespaceWithSecretsIsNotEmpty: a namespace holding a secret cannot be deleted, and the
// error counts it; once the secret is gone, it can.
func TestNamespaceWithSecretsIsNotEmpty(t *testing.T) {
	e := newEnv(t)
	k, _ := keyring(t, "k1")
	e.namespace("team-a")
	e.putSecret(k, "team-a", "one", "value-one")
	e.putSecret(k, "team-a", "two", "value-two")
	err := e.s.DeleteNamespace(e.ctx, epoch, "team-a")
	var ne *store.NotEmptyError
	if !errors.As(err, &ne) || ne.Secrets != 2 || ne.Workflows+ne.Runs+ne.DeadLetters != 0 ||
		!strings.Contains(err.Error(), "it still holds 2 secrets") {
		t.Fatalf("delete a namespace with secrets: %v", err)
	}
	// The foreign key is the second guard.
	if _, err := e.pool.Exec(e.ctx, `DELETE FROM namespaces WHERE name = 'team-a'`); err == nil {
		t.Fatal("the foreign key let a namespace with secrets be deleted")
	}
	for _, n := range []string{"one", "two"} {
		if err := e.s.DeleteSecret(e.ctx, epoch, "team-a", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.DeleteNamespace(e.ctx, epoch, "team-a"); err != nil {
		t.Fatalf("delete the emptied namespace: %v", err)
	}
}

// TestResealSecrets: after a rotation (new key first, old one second), ResealSecrets moves
// every value to the new key without changing it or its timestamps; a value under a key the
// keyring lacks is left alone, counted and reported; a second pass has nothing to do.
func TestResealSecrets(t *testing.T) {
	e := newEnv(t)
	old, oldLines := keyring(t, "k1")
	stranger, _ := keyring(t, "k0")
	e.namespace("team-a")
	want := map[string]string{}
	for i := range 2*102 + 1 { // more than two batches
		ns := defNS
		if i%2 == 1 {
			ns = "team-a"
		}
		name := fmt.Sprintf("s%03d", i)
		want[ns+"/"+name] = fmt.Sprintf("value-%03d", i)
		e.putSecret(old, ns, name, want[ns+"/"+name])
	}
	e.putSecret(stranger, "team-a", "orphan", "sealed-elsewhere")
	before, _, err := e.s.ListSecrets(e.ctx, defNS, store.PageRequest{Size: 500})
	if err != nil {
		t.Fatal(err)
	}

	newLine, err := secretbox.NewKeyLine("k2")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := secretbox.Open([]byte(newLine + "\n" + oldLines[0]))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.s.ResealSecrets(e.ctx, epoch, rotated.Active(), rotated.Reseal)
	var unknown *secretbox.UnknownKeyError
	if res.Resealed != len(want) || res.Failed != 1 || !errors.As(err, &unknown) || unknown.KeyID != "k0" ||
		!strings.Contains(err.Error(), "team-a/orphan") {
		t.Fatalf("reseal: %+v, %v", res, err)
	}
	if n := count(e, `SELECT count(*) FROM secrets WHERE key_id = 'k1'`); n != 0 {
		t.Fatalf("%d rows still under k1", n)
	}
	if n := count(e, `SELECT count(*) FROM secrets WHERE key_id = 'k2'`); n != len(want) {
		t.Fatalf("%d rows under k2, want %d", n, len(want))
	}
	newOnly, err := secretbox.Open([]byte(newLine))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		ns, name, _ := strings.Cut(k, "/")
		if got, ok := e.openSecret(newOnly, ns, name); !ok || got != v {
			t.Fatalf("%s after reseal: %q %v, want %q", k, got, ok, v)
		}
	}
	after, _, err := e.s.ListSecrets(e.ctx, defNS, store.PageRequest{Size: 500})
	if err != nil || len(after) != len(before) {
		t.Fatal(err)
	}
	for i := range before {
		if !after[i].UpdatedAt.Equal(before[i].UpdatedAt) || after[i].UpdatedBy != before[i].UpdatedBy {
			t.Fatalf("reseal changed %s's metadata: %+v → %+v", before[i].Name, before[i], after[i])
		}
	}
	// Only the orphan is left, and it still fails.
	res, err = e.s.ResealSecrets(e.ctx, epoch, rotated.Active(), rotated.Reseal)
	if res.Resealed != 0 || res.Failed != 1 || err == nil {
		t.Fatalf("second pass: %+v %v", res, err)
	}
	if err := e.s.DeleteSecret(e.ctx, epoch, "team-a", "orphan"); err != nil {
		t.Fatal(err)
	}
	if res, err := e.s.ResealSecrets(e.ctx, epoch, rotated.Active(), rotated.Reseal); res != (store.ResealResult{}) || err != nil {
		t.Fatalf("third pass: %+v %v", res, err)
	}
	_, err = e.s.ResealSecrets(e.ctx, epoch-1, rotated.Active(), rotated.Reseal)
	wantIs(t, err, store.ErrStaleEpoch)
}
