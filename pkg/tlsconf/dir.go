package tlsconf

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"
)

// Dir is a directory holding a CA and the certificates it issued: the layout of
// `cairnctl dev` (.cairn/tls/) and of the test harnesses. Files are named base.pem and
// base-key.pem next to ca.pem and ca-key.pem.
type Dir struct {
	Path string
	CA   *CA
}

// renewBefore: a CA or certificate expiring sooner than this is replaced by LoadOrCreateDir
// and Ensure.
const renewBefore = 7 * 24 * time.Hour

// CreateDir makes a fresh CA in path (created 0700).
func CreateDir(path string, o CAOptions) (*Dir, error) {
	ca, err := NewCA(o)
	if err != nil {
		return nil, err
	}
	if _, _, err := ca.WriteFiles(path); err != nil {
		return nil, err
	}
	return &Dir{Path: path, CA: ca}, nil
}

// LoadOrCreateDir loads the CA in path, or makes a new one when there is none or it is
// unusable (unreadable, not a CA, expiring within a week). created says which.
func LoadOrCreateDir(path string, o CAOptions) (d *Dir, created bool, err error) {
	certFile, keyFile := filepath.Join(path, CACertFile), filepath.Join(path, CAKeyFile)
	if ca, err := LoadCA(certFile, keyFile); err == nil && time.Now().Add(renewBefore).Before(ca.Cert.NotAfter) {
		if err := MkdirPrivate(path); err != nil {
			return nil, false, err
		}
		return &Dir{Path: path, CA: ca}, false, nil
	}
	d, err = CreateDir(path, o)
	return d, err == nil, err
}

// CAFile is the path of ca.pem.
func (d *Dir) CAFile() string { return filepath.Join(d.Path, CACertFile) }

// Files returns the paths of base's certificate and key.
func (d *Dir) Files(base string) (cert, key string) {
	c, k := CertFileNames(base)
	return filepath.Join(d.Path, c), filepath.Join(d.Path, k)
}

// Issue signs req and writes it as base.pem / base-key.pem.
func (d *Dir) Issue(base string, req CertRequest) (certFile, keyFile string, err error) {
	kp, err := d.CA.Issue(req)
	if err != nil {
		return "", "", err
	}
	return kp.WriteFiles(d.Path, base)
}

// Ensure keeps base's existing certificate when it is signed by this CA, valid for more than
// a week, names req's identity and carries at least req's DNS names and IPs; otherwise it
// issues a new one. reused says which.
func (d *Dir) Ensure(base string, req CertRequest) (certFile, keyFile string, reused bool, err error) {
	certFile, keyFile = d.Files(base)
	cert, err := VerifyPair(d.CA.Cert, certFile, keyFile, time.Now(), renewBefore)
	if err == nil {
		if id, ierr := IdentityFromCert(cert); ierr == nil && id == req.Identity && covers(cert.DNSNames, cert.IPAddresses, req) {
			return certFile, keyFile, true, nil
		}
	}
	// Missing, expiring, of another CA, or naming something else: issue a new one.
	certFile, keyFile, err = d.Issue(base, req)
	if err != nil {
		return "", "", false, fmt.Errorf("tlsconf: issue %s: %w", base, err)
	}
	return certFile, keyFile, false, nil
}

func covers(dns []string, ips []net.IP, req CertRequest) bool {
	for _, n := range req.DNSNames {
		if !slices.Contains(dns, n) {
			return false
		}
	}
	for _, ip := range req.IPs {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return false
		}
	}
	return true
}
