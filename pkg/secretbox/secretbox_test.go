package secretbox_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-io/cairn/pkg/secretbox"
)

// keyLine is a keyring line for id with a key made of one repeated byte (deterministic tests).
func keyLine(id string, fill byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, secretbox.KeySize))
}

func open(t *testing.T, lines ...string) *secretbox.Keyring {
	t.Helper()
	k, err := secretbox.Open([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := open(t, "# comment", "", keyLine("k1", 1))
	for _, pt := range [][]byte{nil, []byte("x"), []byte("hunter2-correct-horse"), bytes.Repeat([]byte{0, 0xff}, 40_000)} {
		s, err := k.Seal("default", "db-password", pt)
		if err != nil {
			t.Fatal(err)
		}
		if s.KeyID != "k1" || len(s.Nonce) != secretbox.NonceSize || len(s.Ciphertext) != len(pt)+16 {
			t.Fatalf("sealed = key %q, nonce %d bytes, ciphertext %d bytes for %d bytes of plaintext", s.KeyID, len(s.Nonce), len(s.Ciphertext), len(pt))
		}
		got, err := k.Unseal("default", "db-password", s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes returned %d different bytes", len(pt), len(got))
		}
	}
}

func TestTamperEachPart(t *testing.T) {
	k := open(t, keyLine("k1", 1), keyLine("k0", 2))
	s, err := k.Seal("ns", "token", []byte("the plaintext value"))
	if err != nil {
		t.Fatal(err)
	}
	clone := func() secretbox.Sealed {
		return secretbox.Sealed{KeyID: s.KeyID, Nonce: bytes.Clone(s.Nonce), Ciphertext: bytes.Clone(s.Ciphertext)}
	}
	// Every bit of the nonce, of the ciphertext and of the tag matters.
	for i := range s.Nonce {
		for bit := range 8 {
			c := clone()
			c.Nonce[i] ^= 1 << bit
			if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrAuth) {
				t.Fatalf("nonce byte %d bit %d flipped: err = %v, want ErrAuth", i, bit, err)
			}
		}
	}
	for i := range s.Ciphertext {
		c := clone()
		c.Ciphertext[i] ^= 0x80
		if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrAuth) {
			t.Fatalf("ciphertext byte %d (tag from %d) flipped: err = %v, want ErrAuth", i, len(s.Ciphertext)-16, err)
		}
	}
	// A truncated or extended ciphertext, a short nonce.
	c := clone()
	c.Ciphertext = c.Ciphertext[:len(c.Ciphertext)-1]
	if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrAuth) {
		t.Errorf("truncated: %v", err)
	}
	c = clone()
	c.Ciphertext = append(c.Ciphertext, 0)
	if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrAuth) {
		t.Errorf("extended: %v", err)
	}
	c = clone()
	c.Ciphertext = c.Ciphertext[:15]
	if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrMalformed) {
		t.Errorf("shorter than the tag: %v", err)
	}
	c = clone()
	c.Nonce = c.Nonce[:8]
	if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrMalformed) {
		t.Errorf("short nonce: %v", err)
	}
	// The key ID is bound too: relabelled as the other key of the ring, it fails (wrong key
	// and wrong additional data).
	c = clone()
	c.KeyID = "k0"
	if _, err := k.Unseal("ns", "token", c); !errors.Is(err, secretbox.ErrAuth) {
		t.Errorf("relabelled key ID: %v", err)
	}
	// And the untouched value still opens.
	if _, err := k.Unseal("ns", "token", clone()); err != nil {
		t.Fatal(err)
	}
}

func TestBindingToNamespaceAndName(t *testing.T) {
	k := open(t, keyLine("k1", 1))
	s, err := k.Seal("team-a", "token", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ns, name string }{
		{"team-b", "token"},  // copied to another namespace
		{"team-a", "token2"}, // copied to another name
		{"team-at", "oken"},  // same concatenation: lengths are part of the additional data
		{"", "team-atoken"},
	} {
		_, err := k.Unseal(c.ns, c.name, s)
		if !errors.Is(err, secretbox.ErrAuth) {
			t.Errorf("unsealed as %s/%s: err = %v, want ErrAuth", c.ns, c.name, err)
		} else if !strings.Contains(err.Error(), c.ns+"/"+c.name) {
			t.Errorf("error %q does not name the secret", err)
		}
	}
}

func TestCiphertextNeverContainsPlaintext(t *testing.T) {
	k := open(t, keyLine("k1", 1))
	pt := []byte("a-very-recognisable-secret-value")
	a, err := k.Seal("ns", "n", pt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal("ns", "n", pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Fatal("two seals of one plaintext share a nonce or a ciphertext")
	}
	for i := range 200 {
		pt := make([]byte, 8+i)
		_, _ = rand.Read(pt)
		s, err := k.Seal("ns", "n", pt)
		if err != nil {
			t.Fatal(err)
		}
		stored := append(append([]byte(s.KeyID), s.Nonce...), s.Ciphertext...)
		for _, form := range [][]byte{pt, []byte(base64.StdEncoding.EncodeToString(pt)), pt[:8]} {
			if bytes.Contains(stored, form) {
				t.Fatalf("sealed value contains (a form of) its plaintext %x", form)
			}
		}
	}
}

func TestRotation(t *testing.T) {
	old := open(t, keyLine("k1", 1))
	s1, err := old.Seal("ns", "token", []byte("old value"))
	if err != nil {
		t.Fatal(err)
	}
	// Rotate: the new key goes first, the old one stays after it.
	k := open(t, keyLine("k2", 2), keyLine("k1", 1))
	if k.Active() != "k2" || strings.Join(k.IDs(), ",") != "k2,k1" {
		t.Fatalf("Active %q, IDs %v", k.Active(), k.IDs())
	}
	if got, err := k.Unseal("ns", "token", s1); err != nil || string(got) != "old value" {
		t.Fatalf("old value under the rotated keyring: %q, %v", got, err)
	}
	s2, err := k.Seal("ns", "token", []byte("new value"))
	if err != nil || s2.KeyID != "k2" {
		t.Fatalf("new seal under %q, %v; want k2", s2.KeyID, err)
	}
	if _, err := old.Unseal("ns", "token", s2); err == nil {
		t.Fatal("the old keyring opened a value sealed under the new key")
	}
	if !k.NeedsReseal(s1) || k.NeedsReseal(s2) {
		t.Fatal("NeedsReseal wrong")
	}
	r, changed, err := k.Reseal("ns", "token", s1)
	if err != nil || !changed || r.KeyID != "k2" {
		t.Fatalf("Reseal = %q, %v, %v", r.KeyID, changed, err)
	}
	if got, _ := k.Unseal("ns", "token", r); string(got) != "old value" {
		t.Fatalf("resealed value opens to %q", got)
	}
	if same, changed, err := k.Reseal("ns", "token", s2); err != nil || changed || !bytes.Equal(same.Ciphertext, s2.Ciphertext) {
		t.Fatalf("Reseal of a value under the active key changed it: %v %v", changed, err)
	}
	// Once every value is resealed the old key can go; a value left behind names the key.
	newOnly := open(t, keyLine("k2", 2))
	if got, err := newOnly.Unseal("ns", "token", r); err != nil || string(got) != "old value" {
		t.Fatalf("resealed value after removing k1: %q, %v", got, err)
	}
	_, err = newOnly.Unseal("ns", "token", s1)
	var uk *secretbox.UnknownKeyError
	if !errors.As(err, &uk) || uk.KeyID != "k1" || !strings.Contains(err.Error(), `"k1"`) || !strings.Contains(err.Error(), "k2") {
		t.Fatalf("value under a removed key: %v, want an UnknownKeyError naming k1 and the ring's k2", err)
	}
	if _, _, err := newOnly.Reseal("ns", "token", s1); !errors.As(err, &uk) {
		t.Fatalf("Reseal under a removed key: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	good := keyLine("k1", 1)
	secretKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 31)) // must never be echoed
	for _, c := range []struct {
		name, keyring, want string
	}{
		{"empty", "", "no keys"},
		{"only comments", "# nothing\n\n", "no keys"},
		{"no colon", "k1" + strings.TrimPrefix(good, "k1:"), "line 1: want key-id:base64-key"},
		{"empty id", ":" + strings.TrimPrefix(good, "k1:"), `key ID "" is not valid`},
		{"bad id", "k 1:" + strings.TrimPrefix(good, "k1:"), `key ID "k 1" is not valid`},
		{"short key", "k1:" + secretKey, `line 1: key "k1" is 31 bytes, want 32`},
		{"long key", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 33)), "is 33 bytes, want 32"},
		{"bad base64", "k1:not*base64", `key "k1" is not valid standard base64`},
		{"url-safe base64", "k1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "not valid standard base64"},
		{"missing padding", strings.TrimSuffix(good, "="), "not valid standard base64"},
		{"duplicate id", good + "\n" + keyLine("k0", 2) + "\n" + keyLine("k1", 3), `line 3: key ID "k1" appears twice`},
		{"duplicate id on one line", good + "," + keyLine("k1", 3), `line 1: key ID "k1" appears twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := secretbox.Open([]byte(c.keyring))
			if !errors.Is(err, secretbox.ErrKeyring) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want ErrKeyring mentioning %q", err, c.want)
			}
			if strings.Contains(err.Error(), secretKey[:20]) || strings.Contains(err.Error(), strings.TrimPrefix(good, "k1:")[:20]) {
				t.Fatalf("error %q echoes key material", err)
			}
		})
	}
	// Comma-separated entries (for an environment variable) and surrounding blanks are fine.
	k, err := secretbox.Open([]byte(" " + keyLine("a", 1) + " , " + keyLine("b", 2) + "\n"))
	if err != nil || strings.Join(k.IDs(), ",") != "a,b" {
		t.Fatalf("comma-separated keyring: %v, %v", k, err)
	}
}

func TestOpenFileAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(path, []byte(keyLine("k1", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := secretbox.OpenFile(path); err != nil || k.Active() != "k1" {
		t.Fatalf("OpenFile: %v", err)
	}
	if _, err := secretbox.OpenFile(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// The comma-separated form (a keyring in one environment variable, CAIRN_SECRETS_KEYRING).
	if k, err := secretbox.Open([]byte(keyLine("k2", 2) + "," + keyLine("k1", 1))); err != nil || k.Active() != "k2" {
		t.Fatalf("Open of comma-separated entries: %v", err)
	}
}

func TestNewKeyLine(t *testing.T) {
	a, err := secretbox.NewKeyLine("k2026")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := secretbox.NewKeyLine("k2025")
	k := open(t, a, b)
	if k.Active() != "k2026" || strings.TrimPrefix(a, "k2026:") == strings.TrimPrefix(b, "k2025:") {
		t.Fatalf("NewKeyLine gave %q and %q", a, b)
	}
	if _, err := secretbox.NewKeyLine("bad id"); !errors.Is(err, secretbox.ErrKeyring) {
		t.Fatalf("bad id: %v", err)
	}
}
