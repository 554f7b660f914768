package framework

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay on loopback in front of one address (etcd's), through which one
// process reaches it, so that a test can partition that process from it: Cut blackholes the
// link as a network partition does — connections stay open, bytes are dropped both ways and
// new connections are accepted but never reach the target — and Heal ends the connections
// that lived through the cut (their streams lost bytes) and relays new ones again.
type Proxy struct {
	// Addr is the proxy's listen address (host:port on 127.0.0.1).
	Addr string

	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[*relay]bool // live relays; true: it lived through a cut
	done  bool
}

type relay struct{ client, server net.Conn }

func (r *relay) close() {
	_ = r.client.Close()
	if r.server != nil {
		_ = r.server.Close()
	}
}

// NewProxy starts a proxy to target, closed when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("framework: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*relay]bool{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	r := &relay{client: c}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	cut := p.cut
	p.conns[r] = cut
	p.mu.Unlock()
	if cut {
		// Accepted, never connected: the client's packets go nowhere.
		_, _ = io.Copy(io.Discard, c)
		p.forget(r)
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		p.forget(r)
		return
	}
	p.mu.Lock()
	r.server = s
	p.mu.Unlock()
	go p.pipe(r, s, c)
	p.pipe(r, c, s)
	p.forget(r)
}

// pipe copies src to dst, dropping what arrives while the proxy is cut.
func (p *Proxy) pipe(r *relay, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					r.close()
					return
				}
			}
		}
		if err != nil {
			r.close()
			return
		}
	}
}

func (p *Proxy) forget(r *relay) {
	p.mu.Lock()
	delete(p.conns, r)
	p.mu.Unlock()
}

// Cut partitions the link: nothing passes until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for r := range p.conns {
		p.conns[r] = true
	}
}

// Heal ends the link's partition: connections that lived through it are closed (their
// clients reconnect), new ones are relayed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for r, cut := range p.conns {
		if cut {
			r.close()
		}
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.done = true
	for r := range p.conns {
		r.close()
	}
	p.mu.Unlock()
}
