package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// DefaultSchedulerServerName is the DNS name every scheduler certificate carries and every
// client verifies (the schedulers' --scheduler-server-name default).
const DefaultSchedulerServerName = "cairn-scheduler"

const certsUsage = `certs ca --dir DIR [--days N] [--force]
       cairnctl certs issue --ca-dir DIR --role scheduler|gateway|worker --name NAME --out DIR [--dns NAME,...] [--ip IP,...] [--base BASE] [--days N] [--force]
       cairnctl certs show FILE`

// cmdCerts makes the certificates of a cluster: a CA, then one certificate per component.
func cmdCerts(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "certs", args, "ca", "issue", "show")
	if !ok {
		return code
	}
	switch verb {
	case "ca":
		return certsCA(e, args)
	case "issue":
		return certsIssue(e, args)
	}
	return certsShow(e, args)
}

func certsCA(e *env, args []string) int {
	fs := newFlags(e, "certs")
	dir := fs.String("dir", "", "directory to write ca.pem and ca-key.pem into (created 0700; required)")
	days := fs.Int("days", int(tlsconf.DefaultCAValidity/(24*time.Hour)), "validity in days")
	name := fs.String("name", "Cairn CA", "the CA's common name")
	force := fs.Bool("force", false, "replace an existing CA (every certificate it issued stops being trusted)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	switch {
	case len(pos) > 0:
		return usageError(e, "certs", "unexpected arguments %q", pos)
	case *dir == "":
		return usageError(e, "certs", "certs ca: --dir is required")
	case *days < 1:
		return usageError(e, "certs", "--days must be at least 1")
	}
	certPath, keyPath := filepath.Join(*dir, tlsconf.CACertFile), filepath.Join(*dir, tlsconf.CAKeyFile)
	if !*force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			fmt.Fprintf(e.stderr, "cairnctl certs ca: %v (pass --force to replace it)\n", err)
			return ExitFail
		}
	}
	ca, err := tlsconf.NewCA(tlsconf.CAOptions{CommonName: *name, Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs ca: %v\n", err)
		return ExitFail
	}
	if _, _, err := ca.WriteFiles(*dir); err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs ca: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(e.stdout, "CA certificate  %s (distribute it to every component)\n", certPath)
	fmt.Fprintf(e.stdout, "CA key          %s (mode 0600: keep it off the cluster's hosts)\n", keyPath)
	fmt.Fprintf(e.stdout, "valid until     %s\n", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	return ExitOK
}

func certsIssue(e *env, args []string) int {
	fs := newFlags(e, "certs")
	caDir := fs.String("ca-dir", "", "directory holding ca.pem and ca-key.pem (required)")
	role := fs.String("role", "", "scheduler, gateway or worker (required)")
	name := fs.String("name", "", "the component's name; for a worker, its worker id (required)")
	out := fs.String("out", "", "directory to write <base>.pem, <base>-key.pem and a copy of ca.pem into (created 0700; required)")
	base := fs.String("base", "", "file name base (default: the role, e.g. worker.pem and worker-key.pem)")
	days := fs.Int("days", int(tlsconf.DefaultCertValidity/(24*time.Hour)), "validity in days")
	force := fs.Bool("force", false, "replace existing files")
	var dns, ips csvFlag
	fs.Var(&dns, "dns", "DNS names, comma-separated or repeated (a scheduler always gets "+DefaultSchedulerServerName+" unless --server-name says otherwise)")
	fs.Var(&ips, "ip", "IP addresses, comma-separated or repeated")
	serverName := fs.String("server-name", DefaultSchedulerServerName, "scheduler only: the fixed name clients verify (their --scheduler-server-name)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) > 0 {
		return usageError(e, "certs", "unexpected arguments %q", pos)
	}
	var missing []string
	for flag, v := range map[string]string{"--ca-dir": *caDir, "--role": *role, "--name": *name, "--out": *out} {
		if v == "" {
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return usageError(e, "certs", "certs issue: %s required", strings.Join(missing, ", "))
	}
	if *days < 1 {
		return usageError(e, "certs", "--days must be at least 1")
	}
	r, err := tlsconf.ParseRole(*role)
	if err != nil {
		return usageError(e, "certs", "--role %q: want scheduler, gateway or worker", *role)
	}
	id := tlsconf.Identity{Role: r, Name: *name}
	if err := id.Validate(); err != nil {
		return usageError(e, "certs", "--name: %v", err)
	}
	var ipList []net.IP
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageError(e, "certs", "--ip %q is not an IP address", s)
		}
		ipList = append(ipList, ip)
	}
	if r == tlsconf.RoleScheduler && *serverName != "" && !slices.Contains(dns, *serverName) {
		dns = append(csvFlag{*serverName}, dns...)
	}
	if *base == "" {
		*base = *role
	}
	ca, err := tlsconf.LoadCA(filepath.Join(*caDir, tlsconf.CACertFile), filepath.Join(*caDir, tlsconf.CAKeyFile))
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs issue: %v (make one with: cairnctl certs ca --dir %s)\n", err, *caDir)
		return ExitFail
	}
	certName, keyName := tlsconf.CertFileNames(*base)
	certPath, keyPath := filepath.Join(*out, certName), filepath.Join(*out, keyName)
	if !*force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			fmt.Fprintf(e.stderr, "cairnctl certs issue: %v (pass --force to replace it)\n", err)
			return ExitFail
		}
	}
	kp, err := ca.Issue(tlsconf.CertRequest{Identity: id, DNSNames: dns, IPs: ipList, Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs issue: %v\n", err)
		return ExitFail
	}
	if _, _, err := kp.WriteFiles(*out, *base); err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs issue: %v\n", err)
		return ExitFail
	}
	caCopy := filepath.Join(*out, tlsconf.CACertFile)
	if abs(caCopy) != abs(filepath.Join(*caDir, tlsconf.CACertFile)) {
		if err := tlsconf.WriteFile(caCopy, ca.CertPEM, tlsconf.CertFileMode); err != nil {
			fmt.Fprintf(e.stderr, "cairnctl certs issue: %v\n", err)
			return ExitFail
		}
	}
	fmt.Fprintf(e.stdout, "identity     %s\n", id)
	if len(dns)+len(ipList) > 0 {
		fmt.Fprintf(e.stdout, "names        %s\n", strings.Join(sans(kp.Cert.DNSNames, kp.Cert.IPAddresses), ", "))
	}
	fmt.Fprintf(e.stdout, "certificate  %s\n", certPath)
	fmt.Fprintf(e.stdout, "key          %s (mode 0600: owned by the user the %s runs as)\n", keyPath, *role)
	fmt.Fprintf(e.stdout, "CA           %s\n", caCopy)
	fmt.Fprintf(e.stdout, "valid until  %s\n", kp.Cert.NotAfter.UTC().Format(time.RFC3339))
	return ExitOK
}

// certsShow prints what a certificate file says: identity, names, usage, validity.
func certsShow(e *env, args []string) int {
	fs := newFlags(e, "certs")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(e, "certs", "certs show: want one certificate file")
	}
	cert, err := tlsconf.ReadCertFile(pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl certs show: %v\n", err)
		return ExitFail
	}
	idText := "none (no spiffe://cairn/<role>/<name> URI SAN)"
	if id, err := tlsconf.IdentityFromCert(cert); err == nil {
		idText = id.String()
	} else if cert.IsCA {
		idText = "none (a CA)"
	}
	fmt.Fprintf(e.stdout, "subject      %s\n", cert.Subject)
	fmt.Fprintf(e.stdout, "issuer       %s\n", cert.Issuer)
	fmt.Fprintf(e.stdout, "CA           %v\n", cert.IsCA)
	fmt.Fprintf(e.stdout, "identity     %s\n", idText)
	fmt.Fprintf(e.stdout, "names        %s\n", dash(strings.Join(sans(cert.DNSNames, cert.IPAddresses), ", ")))
	fmt.Fprintf(e.stdout, "valid        %s .. %s\n", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	return ExitOK
}

func sans(dns []string, ips []net.IP) []string {
	out := slices.Clone(dns)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists", p)
		}
	}
	return nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
