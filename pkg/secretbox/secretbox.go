package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

// NonceSize is the size of the random GCM nonce stored with each value.
const NonceSize = 12

// aadPrefix versions the additional data, so a future format cannot be confused with this one.
const aadPrefix = "cairn-secret-v1\x00"

var (
	// ErrKeyring: the keyring text is not usable; the message names the entry.
	ErrKeyring = errors.New("secretbox: invalid keyring")
	// ErrAuth: the value does not authenticate: its nonce, ciphertext or tag was altered, or it
	// is being opened under another namespace, name or key ID than it was sealed for.
	ErrAuth = errors.New("secretbox: message authentication failed")
	// ErrMalformed: a Sealed value is structurally wrong (nonce size, ciphertext too short).
	ErrMalformed = errors.New("secretbox: malformed sealed value")
)

// UnknownKeyError reports a value sealed under a key the keyring does not hold.
type UnknownKeyError struct {
	KeyID string   // the key the value names
	Have  []string // the keyring's key IDs, active first
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("secretbox: key %q is not in the keyring (it holds %s): put that key back "+
		"after the active one to decrypt this value", e.KeyID, strings.Join(e.Have, ", "))
}

// Sealed is an encrypted value as stored: the ID of the key it was sealed under, its random
// nonce, and the GCM ciphertext with its 16-byte tag appended.
type Sealed struct {
	KeyID      string
	Nonce      []byte
	Ciphertext []byte
}

// Keyring holds the keys values are sealed and opened with. The first key is the active one:
// Seal uses it; Unseal uses whichever key a value names. A Keyring is immutable and safe for
// concurrent use.
type Keyring struct {
	ids  []string // active first
	aead map[string]cipher.AEAD
}

// Open parses a keyring (see the package documentation for the format).
func Open(keyring []byte) (*Keyring, error) {
	k := &Keyring{aead: map[string]cipher.AEAD{}}
	line := 0
	for _, raw := range strings.Split(string(keyring), "\n") {
		line++
		raw = strings.TrimSpace(raw)
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		for _, entry := range strings.Split(raw, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			if err := k.add(entry, line); err != nil {
				return nil, err
			}
		}
	}
	if len(k.ids) == 0 {
		return nil, fmt.Errorf("%w: no keys (want lines of key-id:base64-of-32-bytes, the first one active)", ErrKeyring)
	}
	return k, nil
}

func (k *Keyring) add(entry string, line int) error {
	id, b64, ok := strings.Cut(entry, ":")
	id = strings.TrimSpace(id)
	if !ok {
		return fmt.Errorf("%w: line %d: want key-id:base64-key, found no ':'", ErrKeyring, line)
	}
	if !validKeyID(id) {
		return fmt.Errorf("%w: line %d: key ID %q is not valid: use [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrKeyring, line, id)
	}
	if _, dup := k.aead[id]; dup {
		return fmt.Errorf("%w: line %d: key ID %q appears twice", ErrKeyring, line, id)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(b64))
	if err != nil {
		// The decoder's error would quote an offset into the key; say only what is wrong.
		return fmt.Errorf("%w: line %d: key %q is not valid standard base64 (with padding)", ErrKeyring, line, id)
	}
	if len(key) != KeySize {
		return fmt.Errorf("%w: line %d: key %q is %d bytes, want %d (AES-256: `openssl rand -base64 32`)", ErrKeyring, line, id, len(key), KeySize)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return fmt.Errorf("%w: line %d: key %q: %v", ErrKeyring, line, id, err)
	}
	k.ids = append(k.ids, id)
	k.aead[id] = aead
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// OpenFile reads and parses the keyring at path. Keep that file readable by the scheduler's
// user only (mode 0400 or 0600).
func OpenFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	k, err := Open(b)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return k, nil
}

// validKeyID: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.
func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Active returns the ID of the key Seal uses.
func (k *Keyring) Active() string { return k.ids[0] }

// IDs returns the key IDs, active first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// Seal encrypts plaintext for the secret name in namespace ns under the active key.
func (k *Keyring) Seal(ns, name string, plaintext []byte) (Sealed, error) {
	id := k.ids[0]
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("secretbox: read random nonce: %w", err)
	}
	ct := k.aead[id].Seal(nil, nonce, plaintext, aad(id, ns, name))
	return Sealed{KeyID: id, Nonce: nonce, Ciphertext: ct}, nil
}

// Unseal decrypts s, which must have been sealed for the secret name in namespace ns. It
// returns an *UnknownKeyError when the keyring lacks s.KeyID, an error wrapping ErrMalformed
// for a structurally wrong value, and one wrapping ErrAuth for any other failure.
func (k *Keyring) Unseal(ns, name string, s Sealed) ([]byte, error) {
	aead, ok := k.aead[s.KeyID]
	if !ok {
		return nil, &UnknownKeyError{KeyID: s.KeyID, Have: k.IDs()}
	}
	if len(s.Nonce) != NonceSize {
		return nil, fmt.Errorf("%w: %s/%s: nonce is %d bytes, want %d", ErrMalformed, ns, name, len(s.Nonce), NonceSize)
	}
	if len(s.Ciphertext) < aead.Overhead() {
		return nil, fmt.Errorf("%w: %s/%s: ciphertext is %d bytes, shorter than the %d-byte tag", ErrMalformed, ns, name, len(s.Ciphertext), aead.Overhead())
	}
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, aad(s.KeyID, ns, name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s under key %q: the value was altered, or was sealed for another secret", ErrAuth, ns, name, s.KeyID)
	}
	return pt, nil
}

// NeedsReseal reports whether s is sealed under a key other than the active one.
func (k *Keyring) NeedsReseal(s Sealed) bool { return s.KeyID != k.ids[0] }

// Reseal re-encrypts s under the active key. A value already under it is returned as is with
// changed false; otherwise it is opened with its own key and sealed anew (fresh nonce).
func (k *Keyring) Reseal(ns, name string, s Sealed) (out Sealed, changed bool, err error) {
	if !k.NeedsReseal(s) {
		return s, false, nil
	}
	pt, err := k.Unseal(ns, name, s)
	if err != nil {
		return Sealed{}, false, err
	}
	defer clear(pt)
	out, err = k.Seal(ns, name, pt)
	if err != nil {
		return Sealed{}, false, err
	}
	return out, true, nil
}

// aad is the additional data binding a value to its key ID, namespace and name. Each part is
// length-prefixed, so no two different triples give the same bytes.
func aad(keyID, ns, name string) []byte {
	b := make([]byte, 0, len(aadPrefix)+12+len(keyID)+len(ns)+len(name))
	b = append(b, aadPrefix...)
	for _, s := range []string{keyID, ns, name} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// NewKeyLine returns a keyring line for a fresh random key with the given ID, ready to be put
// first in a keyring.
func NewKeyLine(id string) (string, error) {
	if !validKeyID(id) {
		return "", fmt.Errorf("%w: key ID %q is not valid: use [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrKeyring, id)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("secretbox: read random key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}
