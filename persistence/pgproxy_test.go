package persistence_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pgProxy is a TCP proxy in front of the PostgreSQL server that reads the
// frontend protocol its clients send, so that a test can act at the
// moment a COMMIT goes to the server: let it through and cut the
// connection before the answer, drop it, hold the answer back, or take
// the whole server away. pgx prepares COMMIT once per connection (a
// Parse naming the statement) and then sends a Bind of that name; the
// proxy maps names to queries to recognise it.
type pgProxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	armed *commitAction // taken by the next COMMIT
	down  bool          // new connections are refused, open ones were cut
	// severed: a connection was cut at a COMMIT, and cancel requests are
	// dropped since, as a broken network would drop them. pgx sends one
	// for a connection it closes on a read error (pgconn's asyncClose);
	// passed on, it may cancel the statement the server is still running
	// before that COMMIT, and the transaction rolls back instead of
	// committing.
	severed bool
	conns   map[*proxyConn]struct{}
	wg      sync.WaitGroup

	parses atomic.Int64 // Parse messages its clients sent: statements prepared
	// inserts counts the INSERTs into events its clients ran (Binds of a
	// statement that inserts into events), mostInserts the most of them
	// one pipeline (up to a Sync) carried.
	inserts, mostInserts atomic.Int64
}

// What a pgProxy does at an armed COMMIT.
const (
	// commitCut lets the COMMIT reach the server, ends the server side's
	// input there, and closes the client's connection at once: the
	// server commits, the client never hears of it.
	commitCut = iota + 1
	// commitDrop closes both sides instead of passing the COMMIT (and
	// whatever came with it): the server rolls back.
	commitDrop
	// commitDown is commitCut, and the proxy goes down: every other
	// connection through it is cut and new ones are refused, until up.
	commitDown
	// commitDelay lets the COMMIT through and holds the server's answer
	// back for delay.
	commitDelay
)

type commitAction struct {
	kind  int
	delay time.Duration
	taken chan struct{} // closed when a COMMIT took the action
}

// newPGProxy starts a pgProxy for the server of dsn and returns dsn
// pointed at it.
func newPGProxy(t *testing.T, dsn string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &pgProxy{target: u.Host, ln: ln, conns: map[*proxyConn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		p.cutAll(nil)
		p.wg.Wait()
	})
	p.wg.Go(p.accept)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// arm makes the next COMMIT through the proxy take the action of kind;
// the channel it returns is closed when one has.
func (p *pgProxy) arm(kind int, delay time.Duration) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = &commitAction{kind: kind, delay: delay, taken: make(chan struct{})}
	return p.armed.taken
}

// take returns the armed action, once.
func (p *pgProxy) take() *commitAction {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.armed
	p.armed = nil
	return a
}

// isSevered reports whether a connection was cut at a COMMIT.
func (p *pgProxy) isSevered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.severed
}

// up lets connections through again after commitDown.
func (p *pgProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *pgProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{p: p, client: client, server: server.(*net.TCPConn), prepared: map[string]string{}}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(c.serve)
	}
}

// cutAll closes every connection but except, and refuses new ones while
// p.down is set.
func (p *pgProxy) cutAll(except *proxyConn) {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		if c != except {
			conns = append(conns, c)
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.client.Close()
		c.server.Close()
	}
}

// proxyConn is one client connection through a pgProxy.
type proxyConn struct {
	p      *pgProxy
	client net.Conn
	server *net.TCPConn

	// What the client sent: bytes not yet parsed into whole messages,
	// whether the startup is over, and the queries of its prepared
	// statements by name ("" for the unnamed one).
	in          []byte
	started     bool
	cancel      bool // the connection is a cancel request
	prepared    map[string]string
	commitBound bool  // a COMMIT was bound since the last Sync
	inserts     int64 // INSERTs into events bound since the last Sync

	mu    sync.Mutex
	cut   bool          // discard the server's answers
	delay time.Duration // hold the server's next answer back this long
}

func (c *proxyConn) serve() {
	defer func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.fromServer()
	}()
	c.fromClient()
	<-done
	c.client.Close()
	c.server.Close()
}

// fromClient passes what the client sends to the server, read by read,
// and acts on an armed COMMIT.
func (c *proxyConn) fromClient() {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			var a *commitAction
			if c.parse(chunk) {
				a = c.p.take()
			}
			if c.cancel && c.p.isSevered() {
				c.client.Close()
				c.server.Close()
				return
			}
			if a == nil {
				if _, werr := c.server.Write(chunk); werr != nil {
					c.client.Close()
					return
				}
			} else {
				stop := c.act(a, chunk)
				close(a.taken)
				if stop {
					return
				}
			}
		}
		if err != nil {
			c.server.CloseWrite()
			return
		}
	}
}

// act does a at a read that carries a COMMIT, and reports whether the
// client's side is over.
func (c *proxyConn) act(a *commitAction, chunk []byte) bool {
	switch a.kind {
	case commitDrop:
		c.client.Close()
		c.server.Close()
		return true
	case commitCut, commitDown:
		c.mu.Lock()
		c.cut = true
		c.mu.Unlock()
		c.p.mu.Lock()
		c.p.severed = true
		c.p.down = c.p.down || a.kind == commitDown
		c.p.mu.Unlock()
		if a.kind == commitDown {
			c.p.cutAll(c)
		}
		c.server.Write(chunk)
		c.server.CloseWrite() // the server reads the COMMIT, then the end
		c.client.Close()
		return true
	case commitDelay:
		c.mu.Lock()
		c.delay = a.delay
		c.mu.Unlock()
	}
	if _, err := c.server.Write(chunk); err != nil {
		c.client.Close()
		return true
	}
	return false
}

// fromServer passes the server's answers to the client, unless the
// connection was cut.
func (c *proxyConn) fromServer() {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			c.mu.Lock()
			cut, delay := c.cut, c.delay
			c.delay = 0
			c.mu.Unlock()
			if delay > 0 {
				time.Sleep(delay)
			}
			if !cut {
				if _, werr := c.client.Write(buf[:n]); werr != nil {
					c.server.Close()
					return
				}
			}
		}
		if err != nil {
			c.client.Close()
			return
		}
	}
}

// parse reads the client's messages in chunk and reports whether they
// asked the server to run COMMIT: a simple query, or a Sync after a Bind
// of a statement prepared as COMMIT (the whole pipeline then went). The first messages (SSL or GSS
// requests, the startup message) have no type byte.
func (c *proxyConn) parse(chunk []byte) (commit bool) {
	c.in = append(c.in, chunk...)
	for {
		if !c.started {
			if len(c.in) < 8 {
				return commit
			}
			n := int(binary.BigEndian.Uint32(c.in))
			if len(c.in) < n {
				return commit
			}
			code := binary.BigEndian.Uint32(c.in[4:])
			c.in = c.in[n:]
			// 80877103 asks for SSL, 80877104 for GSS encryption: the
			// startup message follows. 80877102 is a cancel request.
			c.started = code != 80877103 && code != 80877104
			c.cancel = code == 80877102
			continue
		}
		if len(c.in) < 5 {
			return commit
		}
		n := 1 + int(binary.BigEndian.Uint32(c.in[1:]))
		if len(c.in) < n {
			return commit
		}
		typ, body := c.in[0], c.in[5:n]
		switch typ {
		case 'P': // Parse: name, query, parameter types
			name, rest := cstring(body)
			query, _ := cstring(rest)
			c.prepared[name] = query
			c.p.parses.Add(1)
		case 'B': // Bind: portal, statement, …
			_, rest := cstring(body)
			stmt, _ := cstring(rest)
			c.commitBound = c.commitBound || isCommit(c.prepared[stmt])
			if strings.Contains(c.prepared[stmt], "INSERT INTO events (") {
				c.inserts++
				c.p.inserts.Add(1)
			}
		case 'S': // Sync: the server runs what came before it
			commit = commit || c.commitBound
			c.commitBound = false
			for most := c.p.mostInserts.Load(); c.inserts > most && !c.p.mostInserts.CompareAndSwap(most, c.inserts); {
				most = c.p.mostInserts.Load()
			}
			c.inserts = 0
		case 'Q': // a simple query
			query, _ := cstring(body)
			commit = commit || isCommit(query)
		}
		c.in = c.in[n:]
	}
}

func cstring(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

func isCommit(query string) bool {
	return strings.EqualFold(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(query), ";")), "COMMIT")
}
