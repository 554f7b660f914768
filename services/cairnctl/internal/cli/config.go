package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/loopback"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// ClientConfig is cairnctl's client configuration file (JSON). `cairnctl dev` writes one to
// .cairn/cairnctl.json.
type ClientConfig struct {
	// Addr is the gateway's gRPC address (host:port).
	Addr string `json:"addr,omitempty"`
	// CAFile is the CA the gateway's certificate must chain to; with it, cairnctl talks TLS.
	// A relative path is relative to the configuration file's directory.
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name verified in the gateway's certificate; empty: the host of Addr.
	ServerName string `json:"server_name,omitempty"`
	// Token is sent as "authorization: Bearer <token>" on every call. CAIRN_TOKEN overrides it.
	Token string `json:"token,omitempty"`
}

// ConfigFileName is the name of the file looked up in .cairn/ and the XDG directory.
const ConfigFileName = "cairnctl.json"

// DevConfigFile is the client configuration `cairnctl dev` writes in its state directory,
// which cairnctl reads from the current directory: a dev cluster needs no copy-paste.
const DevConfigFile = ".cairn/" + ConfigFileName

// lookupEnv is os.LookupEnv; a variable so that tests can isolate cairnctl from the
// developer's environment.
var lookupEnv = os.LookupEnv

func getenv(k string) string {
	v, _ := lookupEnv(k)
	return v
}

// configPaths are the places a configuration file is looked for when neither --config nor
// CAIRN_CONFIG names one, in order: .cairn/cairnctl.json in the current directory, then
// $XDG_CONFIG_HOME/cairn/cairnctl.json (or ~/.config/cairn/cairnctl.json).
func configPaths() []string {
	paths := []string{filepath.FromSlash(DevConfigFile)}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		paths = append(paths, filepath.Join(x, "cairn", ConfigFileName))
	} else if home := getenv("HOME"); home != "" {
		paths = append(paths, filepath.Join(home, ".config", "cairn", ConfigFileName))
	}
	return paths
}

// loadClientConfig reads the configuration file: explicit (the --config flag, else
// CAIRN_CONFIG) must exist; otherwise the first of configPaths that exists is used, and none
// is fine. It returns the file it read ("" for none).
func loadClientConfig(explicit string) (ClientConfig, string, error) {
	if explicit == "" {
		explicit = getenv("CAIRN_CONFIG")
	}
	candidates := configPaths()
	if explicit != "" {
		candidates = []string{explicit}
	}
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && explicit == "" {
			continue
		}
		if err != nil {
			return ClientConfig{}, p, fmt.Errorf("configuration file: %w", err)
		}
		var c ClientConfig
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return ClientConfig{}, p, fmt.Errorf("configuration file %s: %w", p, err)
		}
		if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
			c.CAFile = filepath.Join(filepath.Dir(p), c.CAFile)
		}
		return c, p, nil
	}
	return ClientConfig{}, "", nil
}

// resolveClientConfig merges, lowest first: the defaults, the configuration file, the
// environment (CAIRN_ADDR, CAIRN_CA_FILE, CAIRN_TOKEN), the flags (--addr, --ca-file).
func resolveClientConfig(configFlag, addrFlag, caFlag string) (ClientConfig, string, error) {
	c, file, err := loadClientConfig(configFlag)
	if err != nil {
		return c, file, err
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&c.Addr, getenv("CAIRN_ADDR")}, {&c.CAFile, getenv("CAIRN_CA_FILE")}, {&c.Token, getenv("CAIRN_TOKEN")},
		{&c.Addr, addrFlag}, {&c.CAFile, caFlag},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Token != "" && apitoken.ParseSecret(c.Token) != nil {
		from := "CAIRN_TOKEN"
		if getenv("CAIRN_TOKEN") == "" {
			from = "the token of " + file
		}
		return c, file, fmt.Errorf("%s is not a Cairn token (want %s followed by 43 characters)", from, apitoken.SecretPrefix)
	}
	return c, file, nil
}

// dialOptions turns the configuration into gRPC dial options: TLS verified against the CA
// when one is configured, plaintext otherwise, and the bearer token on every call. A token
// is never sent in plaintext beyond loopback.
func (c ClientConfig) dialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	tlsOn := c.CAFile != ""
	if tlsOn {
		tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: c.CAFile, ServerName: c.ServerName})
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.Token != "" {
		if !tlsOn && !loopback.Addr(c.Addr) {
			return nil, fmt.Errorf("refusing to send the API token in plaintext to %s: set --ca-file (CAIRN_CA_FILE) to talk TLS, or use a loopback address", c.Addr)
		}
		// Insecure only lets gRPC send it without TLS; that happens on loopback only (above).
		opts = append(opts, grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: c.Token, Insecure: !tlsOn}))
	}
	return opts, nil
}
