package tlsconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File modes of what WriteFiles writes: certificates are public, keys are for their owner
// only, and so is the directory holding them.
const (
	CertFileMode fs.FileMode = 0o644
	KeyFileMode  fs.FileMode = 0o600
	DirMode      fs.FileMode = 0o700
)

// File names of a CA in a directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// CertFileNames returns the certificate and key file names for base: base.pem and
// base-key.pem.
func CertFileNames(base string) (cert, key string) { return base + ".pem", base + "-key.pem" }

// WriteFile writes data to path with mode, atomically: a temporary file in the same
// directory, created with mode (never wider), synced and renamed over path. An existing
// file's mode is not kept.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; widen it (certificates) only after it is ours.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tlsconf: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tlsconf: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	ok = true
	return nil
}

// MkdirPrivate creates dir (and its parents) if needed and makes dir itself 0700.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	return nil
}

// WriteFiles writes the CA into dir as ca.pem (0644) and ca-key.pem (0600), creating dir
// 0700. It returns the two paths.
func (ca *CA) WriteFiles(dir string) (certPath, keyPath string, err error) {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return "", "", err
	}
	return writePair(dir, filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), ca.CertPEM, keyPEM)
}

// WriteFiles writes the pair into dir as base.pem (0644) and base-key.pem (0600),
// creating dir 0700. It returns the two paths.
func (kp *KeyPair) WriteFiles(dir, base string) (certPath, keyPath string, err error) {
	c, k := CertFileNames(base)
	return writePair(dir, filepath.Join(dir, c), filepath.Join(dir, k), kp.CertPEM, kp.KeyPEM)
}

func writePair(dir, certPath, keyPath string, certPEM, keyPEM []byte) (string, string, error) {
	if err := MkdirPrivate(dir); err != nil {
		return "", "", err
	}
	// The key first: a certificate without its key is useless, a key without its
	// certificate is just rewritten next time.
	if err := WriteFile(keyPath, keyPEM, KeyFileMode); err != nil {
		return "", "", err
	}
	if err := WriteFile(certPath, certPEM, CertFileMode); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// CheckKeyFile reports a key file readable by others than its owner (group or world bits
// set): a warning for operators, not an error, since some deployments share keys through a
// group on purpose.
func CheckKeyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("tlsconf: key file %s has mode %v; it should be 0600 and owned by the service's user", path, fi.Mode().Perm())
	}
	return nil
}

// ErrExpired is returned by VerifyPair for a certificate outside its validity period.
var ErrExpired = errors.New("tlsconf: certificate expired or not yet valid")

// VerifyPair loads the certificate and key at certFile/keyFile and checks that they belong
// together, that the certificate is signed by ca and valid at now for at least minLeft more.
// cairnctl dev uses it to decide whether existing files can be reused.
func VerifyPair(ca *x509.Certificate, certFile, keyFile string, now time.Time, minLeft time.Duration) (*x509.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", certFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", keyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("tlsconf: the key in %s does not belong to %s", keyFile, certFile)
	}
	if now.Before(cert.NotBefore) || now.Add(minLeft).After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: %s is valid %s..%s", ErrExpired, certFile,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	if ca != nil {
		if err := cert.CheckSignatureFrom(ca); err != nil {
			return nil, fmt.Errorf("tlsconf: %s is not signed by the CA: %w", certFile, err)
		}
	}
	return cert, nil
}

// ReadCertFile parses the first certificate of a PEM file.
func ReadCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", path, err)
	}
	return cert, nil
}
