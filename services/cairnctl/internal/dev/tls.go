package dev

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// SchedulerServerName is the name in the dev scheduler's certificate that the gateway and
// the workers verify.
const SchedulerServerName = "cairn-scheduler"

// devTLS is the dev cluster's certificates under DIR/tls: a throwaway CA (ca.pem,
// ca-key.pem) and one certificate per component, kept between runs while valid.
type devTLS struct {
	dir                     *tlsconf.Dir
	createdCA               bool
	schedCert, schedKey     string
	gatewayCert, gatewayKey string
	workers                 [][2]string // cert, key of dev-worker-1…N
}

// workerBase is the file name base of worker i: worker.pem for the first (the layout
// docs/security-tls.md describes), worker-<i>.pem for the others.
func workerBase(i int) string {
	if i == 1 {
		return "worker"
	}
	return fmt.Sprintf("worker-%d", i)
}

// workerID is the id, and the certificate name, of dev worker i.
func workerID(i int) string { return fmt.Sprintf("dev-worker-%d", i) }

func setupTLS(stateDir string, workers int) (*devTLS, error) {
	d, created, err := tlsconf.LoadOrCreateDir(filepath.Join(stateDir, "tls"), tlsconf.CAOptions{CommonName: "Cairn dev CA"})
	if err != nil {
		return nil, err
	}
	t := &devTLS{dir: d, createdCA: created}
	loop := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if t.schedCert, t.schedKey, _, err = d.Ensure("scheduler", tlsconf.CertRequest{
		Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "dev-scheduler"},
		DNSNames: []string{SchedulerServerName}}); err != nil {
		return nil, err
	}
	// The gateway's certificate is both its client certificate towards the scheduler and the
	// server certificate of its public gRPC and REST listeners (localhost, 127.0.0.1, ::1).
	if t.gatewayCert, t.gatewayKey, _, err = d.Ensure("gateway", tlsconf.CertRequest{
		Identity: tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "dev-gateway"},
		DNSNames: []string{"localhost"}, IPs: loop}); err != nil {
		return nil, err
	}
	for i := 1; i <= workers; i++ {
		cert, key, _, err := d.Ensure(workerBase(i), tlsconf.CertRequest{
			Identity: tlsconf.Identity{Role: tlsconf.RoleWorker, Name: workerID(i)}})
		if err != nil {
			return nil, err
		}
		t.workers = append(t.workers, [2]string{cert, key})
	}
	return t, nil
}

// CAFile is the dev CA certificate clients trust.
func (t *devTLS) CAFile() string { return t.dir.CAFile() }
