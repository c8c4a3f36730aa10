// Package osauth turns the credentials an OpenStack user already has into an
// authenticated gophercloud provider: a Keystone token (the spec's --cred), the
// openstack CLI's OS_* variables (password, token or application credential), or a cloud
// of clouds.yaml (--os-cloud / OS_CLOUD). Every secret it sees is registered with a
// Redactor so that no error or log line can carry it.
package osauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// Options say where credentials come from. Empty fields fall back to the environment.
type Options struct {
	Token    string // --cred: a Keystone token, used as is (no re-authentication possible)
	Cloud    string // --os-cloud: a cloud of clouds.yaml
	AuthURL  string // --os-auth-url
	Region   string // --os-region-name
	Getenv   func(string) string
	Timeout  time.Duration // per HTTP request attempt; 0 means 60 s, and a POST's the caller's deadline
	Redactor *Redactor
	// CacheDir, when set, keeps tokens got with a password or an application credential
	// there (see cache.go), for the next runs with the same credentials.
	CacheDir string
	// Transport, when set, wraps the HTTP transport (metrics, call counting, fault injection).
	Transport func(http.RoundTripper) http.RoundTripper
}

// Session is an authenticated provider and where its services are.
type Session struct {
	Provider  *gophercloud.ProviderClient
	Endpoint  gophercloud.EndpointOpts
	ProjectID string // the project the token is scoped to, when known
	Method    string // "token", "password", "application credential", "clouds.yaml"
}

// ErrNoCredentials says nothing was given to authenticate with.
var ErrNoCredentials = errors.New("no OpenStack credentials: give --cred TOKEN (with OS_AUTH_URL), " +
	"--os-cloud NAME (clouds.yaml), or OS_* variables (OS_AUTH_URL with OS_USERNAME/OS_PASSWORD, " +
	"OS_TOKEN or OS_APPLICATION_CREDENTIAL_ID/SECRET)")

// Authenticate builds the provider and authenticates once, so that bad credentials fail here.
func Authenticate(ctx context.Context, o Options) (*Session, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	red := o.Redactor
	if red == nil {
		red = &Redactor{}
	}
	ao, eo, tlsCfg, method, err := resolve(o, getenv, red)
	if err != nil {
		return nil, red.Error(err)
	}
	if ao.IdentityEndpoint == "" {
		return nil, errors.New("no Keystone URL: set OS_AUTH_URL or --os-auth-url (or auth_url in clouds.yaml)")
	}
	pc, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, red.Error(fmt.Errorf("keystone url %q: %w", ao.IdentityEndpoint, err))
	}
	timeout, creates := o.Timeout, o.Timeout
	if timeout == 0 {
		// A POST is not sent twice (see package throttle): ending its attempt early only
		// turns a slow answer into a failure and, perhaps, an orphan for gc. Unless told
		// otherwise it waits as long as the command does.
		timeout, creates = 60*time.Second, 0
	}
	var rt http.RoundTripper = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	// The timeout bounds each attempt on the wire, not the time a request may wait
	// for its turn or between retries (o.Transport's business, within the caller's
	// context).
	rt = attemptTimeout{next: rt, d: timeout, post: creates}
	if o.Transport != nil {
		rt = o.Transport(rt)
	}
	pc.HTTPClient = http.Client{Transport: rt}
	pc.UserAgent.Prepend("ovn-docker")
	pc.UseTokenLock() // the daemon shares one provider between goroutines
	var cache string
	if o.CacheDir != "" && ao.TokenID == "" && ao.AllowReauth {
		cache = cacheFile(o.CacheDir, ao)
		// A cached catalog that lacks Neutron where it is asked for (a region or an
		// endpoint added since) is passed over: a fresh token brings the catalog as it is.
		if c, ok := loadToken(cache); ok && catalogHas(c.Catalog, "network", eo) {
			red.Add(c.Token)
			fromCache(pc, c, ao, cache)
			return &Session{Provider: pc, Endpoint: eo, Method: method, ProjectID: c.Project}, nil
		}
	}
	if err := openstack.Authenticate(ctx, pc, ao); err != nil {
		return nil, red.Error(describeAuthError(method, ao.IdentityEndpoint, err))
	}
	// The token travels in headers only, but no line may ever carry it.
	red.Add(pc.Token())
	if cache != "" {
		_ = saveToken(cache, pc)
	}
	return &Session{Provider: pc, Endpoint: eo, Method: method, ProjectID: projectOf(pc)}, nil
}

// projectOf reads the project of the token the provider holds.
func projectOf(pc *gophercloud.ProviderClient) string {
	var p *tokens.Project
	switch r := pc.GetAuthResult().(type) {
	case tokens.CreateResult:
		p, _ = r.ExtractProject()
	case tokens.GetResult:
		p, _ = r.ExtractProject()
	}
	if p == nil {
		return ""
	}
	return p.ID
}

func describeAuthError(method, url string, err error) error {
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusUnauthorized):
		if method == "token" {
			return fmt.Errorf("keystone at %s refused the token (expired, revoked or invalid)", url)
		}
		return fmt.Errorf("keystone at %s refused the credentials (%s)", url, method)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound) && method == "token":
		return fmt.Errorf("keystone at %s does not know the token (expired, revoked or invalid)", url)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		// Keystone answers 404 for an application credential that was deleted or expired.
		return fmt.Errorf("keystone at %s does not know the credentials (%s): deleted, expired or mistyped", url, method)
	case gophercloud.ResponseCodeIs(err, http.StatusForbidden):
		return fmt.Errorf("keystone at %s: not allowed: %w", url, err)
	}
	return fmt.Errorf("authenticate with keystone at %s (%s): %w", url, method, err)
}

func resolve(o Options, getenv func(string) string, red *Redactor) (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, string, error) {
	eo := gophercloud.EndpointOpts{
		Region:       first(o.Region, getenv("OS_REGION_NAME")),
		Availability: availability(first(getenv("OS_INTERFACE"), getenv("OS_ENDPOINT_TYPE"))),
	}
	tlsCfg, err := tlsFromEnv(getenv)
	if err != nil {
		return gophercloud.AuthOptions{}, eo, nil, "", err
	}
	authURL := first(o.AuthURL, getenv("OS_AUTH_URL"))

	// 1. A token given on the command line, as in the spec.
	if o.Token != "" {
		red.Add(o.Token)
		return gophercloud.AuthOptions{IdentityEndpoint: authURL, TokenID: o.Token}, eo, tlsCfg, "token", nil
	}
	// 2. A cloud of clouds.yaml.
	if cloud := first(o.Cloud, getenv("OS_CLOUD")); cloud != "" {
		opts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
		if f := getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
			opts = append(opts, clouds.WithLocations(f))
		}
		if eo.Region != "" {
			opts = append(opts, clouds.WithRegion(eo.Region))
		}
		ao, ceo, ctls, err := clouds.Parse(opts...)
		if err != nil {
			return ao, ceo, nil, "", fmt.Errorf("cloud %q of clouds.yaml: %w", cloud, err)
		}
		red.Add(ao.Password, ao.TokenID, ao.ApplicationCredentialSecret)
		if o.AuthURL != "" {
			ao.IdentityEndpoint = o.AuthURL
		}
		ao.AllowReauth = ao.TokenID == ""
		if ctls == nil {
			ctls = tlsCfg
		}
		return ao, ceo, ctls, "clouds.yaml", nil
	}
	// 3. OS_* variables, as the openstack CLI reads them.
	if tok := getenv("OS_TOKEN"); tok != "" {
		red.Add(tok)
		return gophercloud.AuthOptions{IdentityEndpoint: authURL, TokenID: tok}, eo, tlsCfg, "token", nil
	}
	if id, secret := first(getenv("OS_APPLICATION_CREDENTIAL_ID"), getenv("OS_APPLICATION_CREDENTIAL_NAME")), getenv("OS_APPLICATION_CREDENTIAL_SECRET"); id != "" || secret != "" {
		red.Add(secret)
		if id == "" || secret == "" {
			return gophercloud.AuthOptions{}, eo, nil, "", errors.New("an application credential needs OS_APPLICATION_CREDENTIAL_ID (or _NAME) and OS_APPLICATION_CREDENTIAL_SECRET")
		}
		ao := gophercloud.AuthOptions{IdentityEndpoint: authURL, ApplicationCredentialSecret: secret, AllowReauth: true}
		if getenv("OS_APPLICATION_CREDENTIAL_ID") != "" {
			ao.ApplicationCredentialID = id
		} else {
			ao.ApplicationCredentialName = id
			ao.Username, ao.UserID, ao.DomainName, ao.DomainID = user(getenv)
		}
		return ao, eo, tlsCfg, "application credential", nil
	}
	if pw := getenv("OS_PASSWORD"); pw != "" {
		red.Add(pw)
		ao := gophercloud.AuthOptions{IdentityEndpoint: authURL, Password: pw, AllowReauth: true}
		ao.Username, ao.UserID, ao.DomainName, ao.DomainID = user(getenv)
		if ao.Username == "" && ao.UserID == "" {
			return ao, eo, nil, "", errors.New("OS_PASSWORD is set but neither OS_USERNAME nor OS_USER_ID")
		}
		if ao.UserID == "" && ao.DomainName == "" && ao.DomainID == "" {
			ao.DomainName = "Default"
		}
		// An ID alone names the project: Keystone (and gophercloud) refuse a scope with
		// both, and openrc files often export both.
		scope := &gophercloud.AuthScope{ProjectID: first(getenv("OS_PROJECT_ID"), getenv("OS_TENANT_ID"))}
		if scope.ProjectID == "" {
			scope.ProjectName = first(getenv("OS_PROJECT_NAME"), getenv("OS_TENANT_NAME"))
		}
		if scope.ProjectName != "" {
			scope.DomainName, scope.DomainID = domain(getenv, "OS_PROJECT_DOMAIN")
			if scope.DomainName == "" && scope.DomainID == "" {
				scope.DomainName = "Default"
			}
		}
		if scope.ProjectID != "" || scope.ProjectName != "" {
			ao.Scope = scope
		}
		return ao, eo, tlsCfg, "password", nil
	}
	return gophercloud.AuthOptions{}, eo, nil, "", ErrNoCredentials
}

// user reads who the user is, keeping one way of naming it: Keystone (and gophercloud)
// refuse a user given by both ID and name, a user ID with a domain, or a domain given by
// both ID and name, while openrc files often export more than one of them.
func user(getenv func(string) string) (name, id, domainName, domainID string) {
	if id = first(getenv("OS_USER_ID"), getenv("OS_USERID")); id != "" {
		return "", id, "", ""
	}
	domainName, domainID = domain(getenv, "OS_USER_DOMAIN")
	return getenv("OS_USERNAME"), "", domainName, domainID
}

// domain reads one domain as prefix_ID or prefix_NAME, else OS_DOMAIN_ID or OS_DOMAIN_NAME:
// the specific variables before the generic ones, and an ID before a name.
func domain(getenv func(string) string, prefix string) (name, id string) {
	for _, p := range []string{prefix, "OS_DOMAIN"} {
		if id := getenv(p + "_ID"); id != "" {
			return "", id
		}
		if name := getenv(p + "_NAME"); name != "" {
			return name, ""
		}
	}
	return "", ""
}

func tlsFromEnv(getenv func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f := getenv("OS_CACERT"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("OS_CACERT: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OS_CACERT %s: no PEM certificate in it", f)
		}
		cfg.RootCAs = pool
	}
	if v := strings.ToLower(getenv("OS_INSECURE")); v == "1" || v == "true" || v == "yes" {
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

func availability(s string) gophercloud.Availability {
	switch strings.TrimSuffix(strings.ToLower(s), "url") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Redactor hides secrets from text that may be shown or logged.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secrets; empty and very short strings are ignored (they would redact
// ordinary words).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 6 && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first: a secret that contains a shorter one must be replaced whole, or
	// the rest of it would show around the "***".
	slices.SortStableFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// String returns s with every registered secret replaced by "***".
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// Error returns err with its message redacted; errors.Is/As still see the original.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// attemptTimeout ends one request attempt after d (a POST after post; 0: only the
// request's context ends it), its body reading included.
type attemptTimeout struct {
	next http.RoundTripper
	d    time.Duration
	post time.Duration
}

func (t attemptTimeout) RoundTrip(r *http.Request) (*http.Response, error) {
	d := t.d
	if r.Method == http.MethodPost {
		d = t.post
	}
	if d <= 0 {
		return t.next.RoundTrip(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		if ctx.Err() == context.DeadlineExceeded && r.Context().Err() == nil {
			return nil, fmt.Errorf("%s %s: no answer within %s: %w", r.Method, r.URL.Redacted(), d, context.DeadlineExceeded)
		}
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
