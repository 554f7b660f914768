package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"time"
)

// Validity defaults.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// backdate is subtracted from NotBefore, so a peer whose clock is a little behind accepts
	// a certificate issued a moment ago.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: its certificate and its signing key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// CAOptions configure NewCA. Zero values take the defaults.
type CAOptions struct {
	CommonName string        // default "Cairn CA"
	Validity   time.Duration // default DefaultCAValidity
	Now        func() time.Time
}

// NewCA generates a self-signed CA with an ECDSA P-256 key, allowed to sign leaf
// certificates only (MaxPathLen 0).
func NewCA(o CAOptions) (*CA, error) {
	if o.CommonName == "" {
		o.CommonName = "Cairn CA"
	}
	if o.Validity <= 0 {
		o.Validity = DefaultCAValidity
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"cairn"}},
		NotBefore:             t.Add(-backdate),
		NotAfter:              t.Add(o.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: self-sign the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: parse the CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), Key: key}, nil
}

// LoadCA reads a CA certificate and its key from PEM files and checks that they belong
// together and that the certificate is a CA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read CA key: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("tlsconf: %s is not a CA certificate", certFile)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", keyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("tlsconf: the key in %s does not belong to the certificate in %s", keyFile, certFile)
	}
	return &CA{Cert: cert, CertPEM: certPEM, Key: key}, nil
}

// KeyPEM is the CA key as a PKCS #8 PEM block.
func (ca *CA) KeyPEM() ([]byte, error) { return marshalKey(ca.Key) }

// Usage says what a leaf certificate may be used for.
type Usage int

// Usages; they combine.
const (
	UsageServer Usage = 1 << iota
	UsageClient
)

// DefaultUsage is the usage of a role's certificate: schedulers and gateways serve and
// dial (server and client), workers only dial.
func DefaultUsage(r Role) Usage {
	if r == RoleWorker {
		return UsageClient
	}
	return UsageServer | UsageClient
}

// CertRequest describes a leaf certificate.
type CertRequest struct {
	// Identity becomes the URI SAN spiffe://cairn/<role>/<name> and the subject's common name.
	// The zero Identity issues a plain server certificate without a Cairn identity (for
	// PostgreSQL or etcd): it needs DNSNames or IPs, and names nobody to Cairn.
	Identity Identity
	// DNSNames and IPs are further SANs (what clients verify a server by).
	DNSNames []string
	IPs      []net.IP
	// Usage; zero means DefaultUsage(Identity.Role).
	Usage Usage
	// Validity; zero means DefaultCertValidity. It is cut to the CA's own expiry.
	Validity time.Duration
	Now      func() time.Time
}

// KeyPair is an issued certificate with its private key.
type KeyPair struct {
	Cert    *x509.Certificate
	CertPEM []byte // the leaf certificate
	KeyPEM  []byte // PKCS #8
}

// Issue signs a new leaf certificate with a fresh ECDSA P-256 key.
func (ca *CA) Issue(req CertRequest) (*KeyPair, error) {
	external := req.Identity == (Identity{})
	switch {
	case external && len(req.DNSNames)+len(req.IPs) == 0:
		return nil, errors.New("tlsconf: a certificate without a Cairn identity needs DNS names or IPs")
	case !external:
		if err := req.Identity.Validate(); err != nil {
			return nil, err
		}
	}
	usage := req.Usage
	if usage == 0 {
		usage = DefaultUsage(req.Identity.Role)
		if external {
			usage = UsageServer
		}
	}
	validity := req.Validity
	if validity <= 0 {
		validity = DefaultCertValidity
	}
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, err
	}
	t := now()
	notAfter := t.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	subject := pkix.Name{CommonName: req.Identity.Name, Organization: []string{"cairn"},
		OrganizationalUnit: []string{string(req.Identity.Role)}}
	var uris []*url.URL
	if external {
		subject = pkix.Name{Organization: []string{"cairn"}}
		if len(req.DNSNames) > 0 {
			subject.CommonName = req.DNSNames[0]
		} else {
			subject.CommonName = req.IPs[0].String()
		}
	} else {
		uris = []*url.URL{req.Identity.URI()}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             t.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPs,
		URIs:                  uris,
	}
	if usage&UsageServer != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if usage&UsageClient != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: sign the certificate of %s: %w", subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: parse the certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsconf: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// keyID is the RFC 5280 method-1 key identifier: SHA-1 of the subject public key bits.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: marshal public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("tlsconf: parse public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

func marshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: marshal private key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key PEM block")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", key)
		}
		return s, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}
