package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoAgent says no agent answers on the socket: the caller works standalone.
var ErrNoAgent = errors.New("no ovn-docker agent answers")

// Client calls an agent over its socket.
type Client struct {
	path string
	hc   *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient talks to the agent at the socket path.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		// One agent, few calls: no idle pool worth keeping.
		DisableKeepAlives: true,
	}}}
}

// Path is the agent's socket.
func (c *Client) Path() string { return c.path }

// Dial returns a client of the agent of the state directory, or ErrNoAgent when none
// runs (no socket, or nobody answers on it). An agent that answers but fails its
// health check is an error of its own: the caller should not work around a live agent.
func Dial(ctx context.Context, stateDir string) (*Client, error) {
	path := filepath.Join(stateDir, SocketName)
	if _, err := os.Stat(path); err != nil {
		return nil, ErrNoAgent
	}
	c := NewClient(path)
	// Health is cheap: an agent that cannot answer it soon is stuck.
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out map[string]string
	err := c.call(hctx, http.MethodGet, "/health", nil, &out)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return nil, ErrNoAgent // a socket left by an agent that died
	}
	return nil, fmt.Errorf("the ovn-docker agent at %s does not answer: %w", path, err)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent/"+Version+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			return &Error{Kind: KindInternal, Message: fmt.Sprintf("the agent answered %s", resp.Status)}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the agent's answer: %w", err)
	}
	return nil
}

func (c *Client) Run(ctx context.Context, r RunRequest) (*RunResult, error) {
	out := &RunResult{}
	return out, c.call(ctx, http.MethodPost, "/containers", r, out)
}

func (c *Client) Remove(ctx context.Context, r RemoveRequest) error {
	q := ""
	if r.Force {
		q = "?force=true"
	}
	return c.call(ctx, http.MethodDelete, "/containers/"+url.PathEscape(r.Container)+q, nil, nil)
}

func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	var out []Interface
	return out, c.call(ctx, http.MethodGet, "/interfaces", nil, &out)
}

func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var out []Network
	return out, c.call(ctx, http.MethodGet, "/networks", nil, &out)
}

func (c *Client) CreateNetwork(ctx context.Context, r CreateNetworkRequest) (*CreateNetworkResult, error) {
	out := &CreateNetworkResult{}
	return out, c.call(ctx, http.MethodPost, "/networks", r, out)
}

func (c *Client) DeleteNetwork(ctx context.Context, name string) (*Network, error) {
	out := &Network{}
	return out, c.call(ctx, http.MethodDelete, "/networks/"+url.PathEscape(name), nil, out)
}

func (c *Client) Pools(ctx context.Context) ([]Pool, error) {
	var out []Pool
	return out, c.call(ctx, http.MethodGet, "/pools", nil, &out)
}

func (c *Client) GC(ctx context.Context, r GCRequest) (*GCResult, error) {
	out := &GCResult{}
	return out, c.call(ctx, http.MethodPost, "/gc", r, out)
}

func (c *Client) Attach(ctx context.Context, r AttachRequest) (*Attachment, error) {
	out := &Attachment{}
	return out, c.call(ctx, http.MethodPost, "/attachments", r, out)
}

func (c *Client) Detach(ctx context.Context, r DetachRequest) error {
	return c.call(ctx, http.MethodPost, "/attachments/release", r, nil)
}

func (c *Client) Check(ctx context.Context, r CheckRequest) error {
	return c.call(ctx, http.MethodPost, "/attachments/check", r, nil)
}

func (c *Client) Collect(ctx context.Context, r CollectRequest) (*CollectResult, error) {
	out := &CollectResult{}
	return out, c.call(ctx, http.MethodPost, "/attachments/collect", r, out)
}

func (c *Client) NetworkReady(ctx context.Context, network string) error {
	return c.call(ctx, http.MethodGet, "/networks/"+url.PathEscape(network)+"/ready", nil, nil)
}

func (c *Client) Status(ctx context.Context) (*Status, error) {
	out := &Status{}
	return out, c.call(ctx, http.MethodGet, "/status", nil, out)
}

// Ready asks whether the agent has finished starting.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/ready", nil, nil)
}
