package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"

	"github.com/cairn-io/cairn/pkg/apitoken"
)

// DevConfigFile is the client configuration `cairnctl dev` writes in its state directory,
// which cairnctl reads from the current directory: a dev cluster needs no copy-paste.
const DevConfigFile = ".cairn/cairnctl.json"

// clientToken returns the API token to send: CAIRN_TOKEN, else the token of the client
// configuration file, else none. Tokens are never taken from the command line, which every
// local user can read.
func clientToken() (string, error) {
	if t := os.Getenv("CAIRN_TOKEN"); t != "" {
		if apitoken.ParseSecret(t) != nil {
			return "", fmt.Errorf("CAIRN_TOKEN is not a Cairn token (want %s followed by 43 characters)", apitoken.SecretPrefix)
		}
		return t, nil
	}
	data, err := os.ReadFile(DevConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var cfg struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Clean(DevConfigFile), err)
	}
	return cfg.Token, nil
}

// tokenOption returns the dial option that sends the token, or nil without one. Without TLS a
// token is sent only to a loopback address.
func tokenOption(addr string, tls bool) (grpc.DialOption, error) {
	tok, err := clientToken()
	if err != nil || tok == "" {
		return nil, err
	}
	if !tls && !loopbackAddr(addr) {
		return nil, fmt.Errorf("refusing to send the API token in clear to %s: configure the gateway's CA (TLS) or use a loopback address", addr)
	}
	return grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: tok, Insecure: !tls}), nil
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
