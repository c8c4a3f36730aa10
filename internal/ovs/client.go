// Package ovs manages access ports on the VM's Open vSwitch bridge by talking to the
// Open_vSwitch database directly (libovsdb), the way ovs-vsctl does: every change is one
// transaction that also bumps next_cfg, and a change only counts as done once
// ovs-vswitchd has applied it (cur_cfg caught up) and opened the device.
//
// Reads that decide something (does this port exist, on which bridge) are asked of the
// server, because other processes (the CLI next to the daemon) write to the same
// database and a local cache may lag behind them. The monitored cache is used to wait
// for ovs-vswitchd and to list ports.
package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

const (
	// reconnectMin and reconnectMax bound the pause between reconnect attempts; an
	// ovsdb-server restart takes well under a second, so start fast.
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 2 * time.Second
	// connectTimeout bounds one background reconnect attempt.
	connectTimeout = 10 * time.Second
	// livenessPoll catches a lost connection whose notification we could not receive.
	livenessPoll = time.Second
)

// errConnLost reports that the connection an operation was using went away; the
// operation is retried on the next connection.
var errConnLost = errors.New("ovsdb connection lost")

// errClosed is returned by operations on a closed Client.
var errClosed = errors.New("ovs client closed")

// onTurnedAway, set by tests only, is called each time whenAccepted is turned away.
var onTurnedAway func()

// Client talks to one Open_vSwitch database. It is safe for concurrent use. It
// reconnects on its own when the connection drops; operations wait for the new
// connection within their context.
type Client struct {
	endpoint string
	dbModel  model.ClientDBModel
	log      *slog.Logger

	// ctx ends when Close is called; it bounds the background reconnect loop.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	cur   *conn         // nil while disconnected
	ready chan struct{} // closed while cur != nil

	// onWait, set by tests only, is called as an operation starts to wait for something
	// outside ("connection", "ovs-vswitchd"): the point where a test may cut it off.
	onWait func(what string)
}

// conn is one live libovsdb connection with its monitored cache. A new conn (and a new
// libovsdb client) is made for every reconnect, so nothing stale survives a restart.
// libovsdb's own WithReconnect is not used: it panics once its backoff gives up, and
// Close cannot stop it while the server is down.
type conn struct {
	ovs   client.Client
	cache *cache.TableCache

	lost     chan struct{}
	lostOnce sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the cache changes
}

// Dial connects to the database at endpoint ("unix:/path" or "tcp:host:port") and
// starts monitoring the tables this package needs. It fails if the first connection
// cannot be made within ctx; later disconnects are healed in the background.
func Dial(ctx context.Context, endpoint string) (*Client, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	dbModel, err := newClientDBModel()
	if err != nil {
		return nil, fmt.Errorf("build ovsdb model: %w", err)
	}
	c := &Client{
		endpoint: endpoint,
		dbModel:  dbModel,
		log:      slog.Default().With("ovsdb", endpoint),
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	cn, err := whenAccepted(ctx, func() (*conn, error) { return c.connect(ctx) })
	if err != nil {
		return nil, fmt.Errorf("connect to ovsdb %s: %w", endpoint, err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.setConn(cn)
	go c.supervise(cn)
	return c, nil
}

// whenAccepted runs connect again while the server turns the connection away because
// its queue of connections not yet accepted is full: on a unix socket a full queue fails
// connect at once with EAGAIN instead of making it wait, and ovsdb-server's queue is
// short (a busy server took 65 of 200 connections and turned the rest away). A VM's
// processes started in a burst (a hundred "ovn-docker rm" at once) must wait their
// turn, not fail. Other errors return at once.
func whenAccepted[T any](ctx context.Context, connect func() (T, error)) (T, error) {
	pause := 5 * time.Millisecond
	for {
		v, err := connect()
		if err == nil || !errors.Is(err, syscall.EAGAIN) {
			return v, err
		}
		if onTurnedAway != nil {
			onTurnedAway()
		}
		// Jittered, so that the turned-away processes do not come back together.
		t := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// Close disconnects and stops reconnecting. Operations still running fail.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// checkEndpoint accepts the two forms the daemon is configured with. libovsdb would
// silently turn "unix:" without a path into the system default socket, so insist on one.
func checkEndpoint(endpoint string) error {
	scheme, rest, ok := strings.Cut(endpoint, ":")
	if !ok {
		return fmt.Errorf("invalid ovsdb endpoint %q: want unix:/path or tcp:host:port", endpoint)
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return fmt.Errorf("invalid ovsdb endpoint %q: unix socket path must be absolute", endpoint)
		}
	case "tcp":
		if _, port, err := net.SplitHostPort(rest); err != nil || port == "" {
			return fmt.Errorf("invalid ovsdb endpoint %q: want tcp:host:port", endpoint)
		}
	default:
		return fmt.Errorf("invalid ovsdb endpoint %q: unsupported scheme %q (want unix or tcp)", endpoint, scheme)
	}
	return nil
}

// newClientDBModel covers only the tables we touch, so the client keeps working against
// an ovsdb-server whose other tables differ from the schema the models came from.
func newClientDBModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitch.OpenvSwitchTable: &vswitch.OpenvSwitch{},
		vswitch.BridgeTable:      &vswitch.Bridge{},
		vswitch.PortTable:        &vswitch.Port{},
		vswitch.InterfaceTable:   &vswitch.Interface{},
	})
}

// connect makes one connection and fills its cache. Only the columns we read are
// monitored: Interface statistics alone would otherwise stream an update every few
// seconds per port.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	ovs, err := client.NewOVSDBClient(c.dbModel, client.WithEndpoint(c.endpoint))
	if err != nil {
		return nil, err
	}
	if err := ovs.Connect(ctx); err != nil {
		ovs.Close()
		return nil, err
	}
	cn := &conn{
		ovs:     ovs,
		cache:   ovs.Cache(),
		lost:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	notify := func() { cn.notify() }
	cn.cache.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { notify() },
		UpdateFunc: func(string, model.Model, model.Model) { notify() },
		DeleteFunc: func(string, model.Model) { notify() },
	})
	go func() {
		select {
		case <-ovs.DisconnectNotify():
			cn.markLost()
		case <-cn.lost:
		}
	}()

	var (
		root  vswitch.OpenvSwitch
		br    vswitch.Bridge
		port  vswitch.Port
		iface vswitch.Interface
	)
	mon := ovs.NewMonitor(
		client.WithTable(&root, &root.NextCfg, &root.CurCfg),
		client.WithTable(&br, &br.Name, &br.Ports),
		client.WithTable(&port, &port.Name, &port.Tag, &port.Trunks, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(&iface, &iface.Name, &iface.Ofport, &iface.Error),
	)
	if _, err := ovs.Monitor(ctx, mon); err != nil {
		cn.markLost()
		ovs.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return cn, nil
}

// supervise replaces the connection whenever it is lost, until Close.
func (c *Client) supervise(cn *conn) {
	defer close(c.done)
	for {
		lost := c.watch(cn)
		c.connLost(cn)
		cn.ovs.Close()
		if !lost {
			return
		}
		c.log.Warn("ovsdb connection lost, reconnecting")
		cn = c.reconnect()
		if cn == nil {
			return
		}
		c.log.Info("ovsdb connection restored")
		c.setConn(cn)
	}
}

// watch blocks until cn is lost (true) or the client is closed (false).
func (c *Client) watch(cn *conn) bool {
	tick := time.NewTicker(livenessPoll)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return false
		case <-cn.lost:
			return true
		case <-tick.C:
			// libovsdb drops its RPC client once the server hangs up; its disconnect
			// notification is best effort, this is not.
			if cn.ovs.CurrentEndpoint() == "" {
				cn.markLost()
			}
		}
	}
}

// reconnect retries with capped exponential backoff; nil means the client was closed.
func (c *Client) reconnect() *conn {
	delay := reconnectMin
	for {
		ctx, cancel := context.WithTimeout(c.ctx, connectTimeout)
		cn, err := c.connect(ctx)
		cancel()
		if err == nil {
			return cn
		}
		c.log.Debug("ovsdb reconnect failed", "err", err, "retry_in", delay)
		select {
		case <-c.ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, reconnectMax)
	}
}

func (c *Client) setConn(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cn
	close(c.ready)
}

// connLost retires cn so that no operation picks it up again.
func (c *Client) connLost(cn *conn) {
	cn.markLost()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
		c.ready = make(chan struct{})
	}
}

// getConn returns the live connection, waiting for a reconnect within ctx.
func (c *Client) getConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, ready := c.cur, c.ready
		c.mu.Unlock()
		if cn != nil {
			select {
			case <-cn.lost:
				c.connLost(cn)
				continue
			default:
				return cn, nil
			}
		}
		if c.onWait != nil {
			c.onWait("connection")
		}
		select {
		case <-ready:
		case <-c.ctx.Done():
			return nil, errClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for ovsdb connection to %s: %w", c.endpoint, ctx.Err())
		}
	}
}

// do runs fn on the live connection and runs it again on the next one if the
// connection drops underneath it. fn must therefore be safe to repeat.
func (c *Client) do(ctx context.Context, fn func(*conn) error) error {
	for {
		cn, err := c.getConn(ctx)
		if err != nil {
			return err
		}
		err = fn(cn)
		if err == nil || !isConnLoss(err) {
			return err
		}
		c.connLost(cn)
		if ctx.Err() != nil {
			return err
		}
	}
}

// isConnLoss tells transport failures (worth retrying on a new connection) from
// answers of the server.
func isConnLoss(err error) bool {
	return errors.Is(err, errConnLost) ||
		errors.Is(err, client.ErrNotConnected) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

func (cn *conn) markLost() {
	cn.lostOnce.Do(func() { close(cn.lost) })
}

func (cn *conn) notify() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	close(cn.changed)
	cn.changed = make(chan struct{})
}

func (cn *conn) changes() <-chan struct{} {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.changed
}

// waitFor re-evaluates cond on every cache change until it reports done, the
// connection is lost or ctx ends.
func (cn *conn) waitFor(ctx context.Context, cond func() (bool, error)) error {
	// The event queue of the cache may drop events under extreme load; the ticker makes
	// sure a missed wake-up only costs a little latency.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := cn.changes() // taken before evaluating, so no change slips in between
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.lost:
			return errConnLost
		case <-ch:
		case <-tick.C:
		}
	}
}
