package osauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// isolate keeps the process environment out of clouds.yaml parsing, which reads a few
// OS_* variables itself.
func isolate(t *testing.T) {
	for _, k := range []string{"OS_CLOUD", "OS_REGION_NAME", "OS_INTERFACE", "OS_CLIENT_CONFIG_FILE", "OS_CACERT", "OS_CERT", "OS_KEY"} {
		t.Setenv(k, "")
	}
}

const authURL = "http://keystone.test:5000/v3"

func TestResolveToken(t *testing.T) {
	isolate(t)
	red := &Redactor{}
	// The token wins over everything else that is set.
	env := map[string]string{"OS_AUTH_URL": authURL, "OS_CLOUD": "c", "OS_TOKEN": "env-token-123", "OS_PASSWORD": "pw-123456", "OS_USERNAME": "u"}
	ao, _, _, method, err := resolve(Options{Token: "cli-token-123"}, envOf(env), red)
	if err != nil {
		t.Fatal(err)
	}
	if method != "token" || ao.TokenID != "cli-token-123" || ao.IdentityEndpoint != authURL || ao.AllowReauth || ao.Password != "" {
		t.Fatalf("method %q, options %+v", method, ao)
	}
	if red.String("x cli-token-123 y") != "x *** y" {
		t.Fatal("the token is not registered with the redactor")
	}
	// --os-auth-url beats OS_AUTH_URL.
	ao, _, _, _, _ = resolve(Options{Token: "cli-token-123", AuthURL: "http://other:5000/v3"}, envOf(env), red)
	if ao.IdentityEndpoint != "http://other:5000/v3" {
		t.Fatalf("auth url %q", ao.IdentityEndpoint)
	}
}

func TestResolveOSToken(t *testing.T) {
	isolate(t)
	red := &Redactor{}
	env := map[string]string{"OS_AUTH_URL": authURL, "OS_TOKEN": "env-token-123", "OS_PASSWORD": "pw-123456", "OS_USERNAME": "u",
		"OS_APPLICATION_CREDENTIAL_ID": "ac", "OS_APPLICATION_CREDENTIAL_SECRET": "acsecret"}
	ao, _, _, method, err := resolve(Options{}, envOf(env), red)
	if err != nil || method != "token" || ao.TokenID != "env-token-123" || ao.AllowReauth {
		t.Fatalf("method %q, options %+v, err %v", method, ao, err)
	}
	if red.String("env-token-123") != "***" {
		t.Fatal("OS_TOKEN not registered with the redactor")
	}
}

func TestResolveApplicationCredential(t *testing.T) {
	isolate(t)
	red := &Redactor{}
	env := map[string]string{"OS_AUTH_URL": authURL, "OS_APPLICATION_CREDENTIAL_ID": "ac-id", "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret-1",
		"OS_PASSWORD": "pw-123456", "OS_USERNAME": "u"}
	ao, _, _, method, err := resolve(Options{}, envOf(env), red)
	if err != nil {
		t.Fatal(err)
	}
	if method != "application credential" || ao.ApplicationCredentialID != "ac-id" || ao.ApplicationCredentialSecret != "ac-secret-1" ||
		ao.ApplicationCredentialName != "" || ao.Password != "" || ao.Username != "" || !ao.AllowReauth || ao.Scope != nil {
		t.Fatalf("method %q, options %+v", method, ao)
	}
	acceptable(t, "application credential by ID", ao)
	if red.String("ac-secret-1") != "***" {
		t.Fatal("the secret is not registered with the redactor")
	}

	// By name: the user is needed to find it.
	env = map[string]string{"OS_AUTH_URL": authURL, "OS_APPLICATION_CREDENTIAL_NAME": "ac-name", "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret-1",
		"OS_USERNAME": "user-a", "OS_USER_DOMAIN_NAME": "Default"}
	ao, _, _, _, err = resolve(Options{}, envOf(env), red)
	if err != nil {
		t.Fatal(err)
	}
	if ao.ApplicationCredentialName != "ac-name" || ao.ApplicationCredentialID != "" || ao.Username != "user-a" || ao.DomainName != "Default" {
		t.Fatalf("by name: %+v", ao)
	}
	acceptable(t, "application credential by name", ao)
	env["OS_USER_ID"] = "u1"
	ao, _, _, _, _ = resolve(Options{}, envOf(env), red)
	if ao.UserID != "u1" || ao.Username != "" || ao.DomainName != "" {
		t.Fatalf("by name, user ID and name: %+v", ao)
	}
	acceptable(t, "application credential by name and user ID", ao)

	// Half of a credential is an error that does not show the half given.
	for _, env := range []map[string]string{
		{"OS_AUTH_URL": authURL, "OS_APPLICATION_CREDENTIAL_ID": "ac-id"},
		{"OS_AUTH_URL": authURL, "OS_APPLICATION_CREDENTIAL_SECRET": "lonely-secret"},
	} {
		_, _, _, _, err := resolve(Options{}, envOf(env), red)
		if err == nil || !strings.Contains(err.Error(), "needs OS_APPLICATION_CREDENTIAL_ID") || strings.Contains(err.Error(), "lonely-secret") {
			t.Errorf("%v: got %v", env, err)
		}
	}
	if red.String("lonely-secret") != "***" {
		t.Fatal("a secret given without its ID is not registered with the redactor")
	}
}

func TestResolvePassword(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(gophercloud.AuthOptions) bool
	}{
		{"project by name, domains given",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_PROJECT_NAME": "tenant-a",
				"OS_USER_DOMAIN_NAME": "Users", "OS_PROJECT_DOMAIN_NAME": "Projects"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.Username == "user-a" && ao.Password == "pw-123456" && ao.DomainName == "Users" && ao.AllowReauth &&
					*ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainName: "Projects"}
			}},
		{"domains default to Default",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_PROJECT_NAME": "tenant-a"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainName == "Default" && *ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainName: "Default"}
			}},
		{"OS_DOMAIN_NAME serves both",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_TENANT_NAME": "tenant-a", "OS_DOMAIN_NAME": "D"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainName == "D" && *ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainName: "D"}
			}},
		{"domain IDs",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_PROJECT_NAME": "tenant-a",
				"OS_USER_DOMAIN_ID": "ud", "OS_PROJECT_DOMAIN_ID": "pd"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainID == "ud" && ao.DomainName == "" && *ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainID: "pd"}
			}},
		{"project by ID needs no domain",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_PROJECT_ID": "p1", "OS_PROJECT_NAME": "ignored"},
			func(ao gophercloud.AuthOptions) bool {
				return *ao.Scope == gophercloud.AuthScope{ProjectID: "p1"}
			}},
		{"user by ID needs no domain",
			map[string]string{"OS_USER_ID": "u1", "OS_PASSWORD": "pw-123456", "OS_TENANT_ID": "p1"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.UserID == "u1" && ao.DomainName == "" && ao.DomainID == "" && *ao.Scope == gophercloud.AuthScope{ProjectID: "p1"}
			}},
		{"openrc with project ID and name: the ID alone",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456", "OS_PROJECT_ID": "p1", "OS_PROJECT_NAME": "tenant-a",
				"OS_PROJECT_DOMAIN_ID": "default", "OS_USER_DOMAIN_NAME": "Default"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainName == "Default" && *ao.Scope == gophercloud.AuthScope{ProjectID: "p1"}
			}},
		{"user ID and name: the ID alone, without domain",
			map[string]string{"OS_USERNAME": "user-a", "OS_USER_ID": "u1", "OS_USER_DOMAIN_NAME": "Default", "OS_PASSWORD": "pw-123456"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.UserID == "u1" && ao.Username == "" && ao.DomainName == "" && ao.DomainID == ""
			}},
		{"user domain ID and name: the ID",
			map[string]string{"OS_USERNAME": "user-a", "OS_USER_DOMAIN_ID": "ud", "OS_USER_DOMAIN_NAME": "Users", "OS_PASSWORD": "pw-123456"},
			func(ao gophercloud.AuthOptions) bool { return ao.DomainID == "ud" && ao.DomainName == "" }},
		{"specific domain variables before OS_DOMAIN_*",
			map[string]string{"OS_USERNAME": "user-a", "OS_USER_DOMAIN_NAME": "Users", "OS_DOMAIN_ID": "g", "OS_PASSWORD": "pw-123456",
				"OS_PROJECT_NAME": "tenant-a", "OS_PROJECT_DOMAIN_NAME": "Projects"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainName == "Users" && ao.DomainID == "" && *ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainName: "Projects"}
			}},
		{"OS_DOMAIN_ID serves both",
			map[string]string{"OS_USERNAME": "user-a", "OS_DOMAIN_ID": "g", "OS_PASSWORD": "pw-123456", "OS_PROJECT_NAME": "tenant-a"},
			func(ao gophercloud.AuthOptions) bool {
				return ao.DomainID == "g" && ao.DomainName == "" && *ao.Scope == gophercloud.AuthScope{ProjectName: "tenant-a", DomainID: "g"}
			}},
		{"no project: unscoped",
			map[string]string{"OS_USERNAME": "user-a", "OS_PASSWORD": "pw-123456"},
			func(ao gophercloud.AuthOptions) bool { return ao.Scope == nil }},
	} {
		tc.env["OS_AUTH_URL"] = authURL
		red := &Redactor{}
		ao, _, _, method, err := resolve(Options{}, envOf(tc.env), red)
		if err != nil || method != "password" || ao.IdentityEndpoint != authURL || !tc.check(ao) {
			t.Errorf("%s: method %q err %v options %+v scope %+v", tc.name, method, err, ao, ao.Scope)
		}
		if red.String("pw-123456") != "***" {
			t.Errorf("%s: the password is not registered with the redactor", tc.name)
		}
		acceptable(t, tc.name, ao)
	}

	_, _, _, _, err := resolve(Options{}, envOf(map[string]string{"OS_AUTH_URL": authURL, "OS_PASSWORD": "pw-123456"}), &Redactor{})
	if err == nil || !strings.Contains(err.Error(), "neither OS_USERNAME nor OS_USER_ID") || strings.Contains(err.Error(), "pw-123456") {
		t.Fatalf("password without user: %v", err)
	}
}

// acceptable checks the options against gophercloud's own rules for a token request,
// which refuse (before any request) identities and scopes named twice.
func acceptable(t *testing.T, name string, ao gophercloud.AuthOptions) {
	t.Helper()
	scope, err := ao.ToTokenV3ScopeMap()
	if err != nil {
		t.Errorf("%s: gophercloud refuses the scope: %T %v", name, err, err)
		return
	}
	if _, err := ao.ToTokenV3CreateMap(scope); err != nil {
		t.Errorf("%s: gophercloud refuses the identity: %T %v", name, err, err)
	}
}

func TestResolveNothing(t *testing.T) {
	isolate(t)
	_, _, _, _, err := resolve(Options{}, envOf(map[string]string{"OS_AUTH_URL": authURL, "OS_USERNAME": "u"}), &Redactor{})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("got %v, want ErrNoCredentials", err)
	}
}

const cloudsYAML = `clouds:
  pw:
    auth:
      auth_url: http://keystone.test:5000/v3
      username: user-a
      password: cloud-pw-1
      project_name: tenant-a
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
  tok:
    auth:
      auth_url: http://keystone.test:5000/v3
      token: cloud-token-1
  ac:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://keystone.test:5000/v3
      application_credential_id: ac-id
      application_credential_secret: cloud-ac-secret
`

func writeClouds(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(f, []byte(cloudsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestResolveCloudsYAML(t *testing.T) {
	isolate(t)
	file := writeClouds(t)
	red := &Redactor{}
	// OS_CLOUD picks the cloud; OS_* password variables are then ignored.
	env := map[string]string{"OS_CLOUD": "pw", "OS_CLIENT_CONFIG_FILE": file, "OS_USERNAME": "other", "OS_PASSWORD": "env-pw-1"}
	ao, eo, _, method, err := resolve(Options{}, envOf(env), red)
	if err != nil {
		t.Fatal(err)
	}
	if method != "clouds.yaml" || ao.Username != "user-a" || ao.Password != "cloud-pw-1" || ao.IdentityEndpoint != authURL ||
		!ao.AllowReauth || ao.Scope == nil || ao.Scope.ProjectName != "tenant-a" {
		t.Fatalf("method %q options %+v", method, ao)
	}
	if eo.Region != "RegionOne" || eo.Availability != gophercloud.AvailabilityInternal {
		t.Fatalf("endpoint opts %+v", eo)
	}
	if red.String("cloud-pw-1") != "***" {
		t.Fatal("the cloud's password is not registered with the redactor")
	}

	// --os-cloud beats OS_CLOUD; --os-auth-url and --os-region-name beat the file.
	env["OS_CLOUD"] = "nosuch"
	ao, eo, _, _, err = resolve(Options{Cloud: "pw", AuthURL: "http://elsewhere:5000/v3", Region: "R2"}, envOf(env), red)
	if err != nil || ao.IdentityEndpoint != "http://elsewhere:5000/v3" || eo.Region != "R2" {
		t.Fatalf("overrides: %+v %+v %v", ao, eo, err)
	}

	// A token in the file is not re-authenticated with.
	ao, _, _, _, err = resolve(Options{Cloud: "tok"}, envOf(map[string]string{"OS_CLIENT_CONFIG_FILE": file}), red)
	if err != nil || ao.TokenID != "cloud-token-1" || ao.AllowReauth {
		t.Fatalf("token cloud: %+v %v", ao, err)
	}
	ao, _, _, _, err = resolve(Options{Cloud: "ac"}, envOf(map[string]string{"OS_CLIENT_CONFIG_FILE": file}), red)
	if err != nil || ao.ApplicationCredentialID != "ac-id" || !ao.AllowReauth {
		t.Fatalf("application credential cloud: %+v %v", ao, err)
	}
	for _, s := range []string{"cloud-token-1", "cloud-ac-secret"} {
		if red.String(s) != "***" {
			t.Errorf("%s is not registered with the redactor", s)
		}
	}

	// An unknown cloud, or a missing file, names the cloud.
	for _, f := range []string{file, filepath.Join(t.TempDir(), "none.yaml")} {
		_, _, _, _, err = resolve(Options{Cloud: "nosuch"}, envOf(map[string]string{"OS_CLIENT_CONFIG_FILE": f}), red)
		if err == nil || !strings.Contains(err.Error(), `cloud "nosuch" of clouds.yaml`) {
			t.Errorf("unknown cloud in %s: %v", f, err)
		}
	}
}

func TestResolveEndpointAndTLS(t *testing.T) {
	isolate(t)
	base := map[string]string{"OS_AUTH_URL": authURL, "OS_TOKEN": "env-token-123"}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return envOf(m)
	}
	for iface, want := range map[string]gophercloud.Availability{
		"": gophercloud.AvailabilityPublic, "public": gophercloud.AvailabilityPublic, "internal": gophercloud.AvailabilityInternal,
		"internalURL": gophercloud.AvailabilityInternal, "admin": gophercloud.AvailabilityAdmin, "adminURL": gophercloud.AvailabilityAdmin,
	} {
		_, eo, _, _, err := resolve(Options{}, with("OS_INTERFACE", iface), &Redactor{})
		if err != nil || eo.Availability != want {
			t.Errorf("OS_INTERFACE=%q: %v %v, want %v", iface, eo.Availability, err, want)
		}
	}
	_, eo, _, _, _ := resolve(Options{}, with("OS_ENDPOINT_TYPE", "internalURL"), &Redactor{})
	if eo.Availability != gophercloud.AvailabilityInternal {
		t.Errorf("OS_ENDPOINT_TYPE: %v", eo.Availability)
	}
	_, eo, _, _, _ = resolve(Options{Region: "R2"}, with("OS_REGION_NAME", "R1"), &Redactor{})
	if eo.Region != "R2" {
		t.Errorf("region %q, want the option's R2", eo.Region)
	}
	_, eo, _, _, _ = resolve(Options{}, with("OS_REGION_NAME", "R1"), &Redactor{})
	if eo.Region != "R1" {
		t.Errorf("region %q, want OS_REGION_NAME's R1", eo.Region)
	}

	for _, v := range []string{"1", "true", "YES"} {
		_, _, cfg, _, err := resolve(Options{}, with("OS_INSECURE", v), &Redactor{})
		if err != nil || !cfg.InsecureSkipVerify {
			t.Errorf("OS_INSECURE=%s: %+v %v", v, cfg, err)
		}
	}
	if _, _, cfg, _, _ := resolve(Options{}, with("OS_INSECURE", "false"), &Redactor{}); cfg.InsecureSkipVerify {
		t.Error("OS_INSECURE=false skips verification")
	}

	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{filepath.Join(dir, "missing.pem"): "OS_CACERT", garbage: "no PEM certificate"} {
		if _, _, _, _, err := resolve(Options{}, with("OS_CACERT", f), &Redactor{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OS_CACERT=%s: got %v, want %q", f, err, want)
		}
	}
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, cfg, _, err := resolve(Options{}, with("OS_CACERT", good), &Redactor{})
	if err != nil || cfg.RootCAs == nil {
		t.Fatalf("OS_CACERT with a certificate: %+v %v", cfg, err)
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// fakeKeystone answers every token request with the given status.
func fakeKeystone(t *testing.T, status int) (*httptest.Server, *int) {
	t.Helper()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error": {"code": %d, "message": "canned", "title": "canned"}}`, status)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestAuthenticateErrors(t *testing.T) {
	isolate(t)
	ctx := context.Background()

	// Nothing to authenticate with, or nowhere to: no request is made.
	_, err := Authenticate(ctx, Options{Getenv: envOf(map[string]string{"OS_AUTH_URL": authURL})})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
	_, err = Authenticate(ctx, Options{Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})})
	if err == nil || !strings.Contains(err.Error(), "no Keystone URL: set OS_AUTH_URL") {
		t.Fatalf("no auth url: %v", err)
	}
	_, err = Authenticate(ctx, Options{Token: "cli-token-123", Getenv: envOf(nil)})
	if err == nil || !strings.Contains(err.Error(), "no Keystone URL") {
		t.Fatalf("token without auth url: %v", err)
	}

	for _, tc := range []struct {
		status int
		opts   Options
		secret string
		want   string
	}{
		{401, Options{Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})}, "pw-123456", "refused the credentials (password)"},
		{401, Options{Getenv: envOf(map[string]string{"OS_APPLICATION_CREDENTIAL_ID": "ac", "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret-1"})}, "ac-secret-1", "refused the credentials (application credential)"},
		{401, Options{Token: "cli-token-123", Getenv: envOf(nil)}, "cli-token-123", "refused the token (expired, revoked or invalid)"},
		{404, Options{Token: "cli-token-123", Getenv: envOf(nil)}, "cli-token-123", "does not know the token"},
		{404, Options{Getenv: envOf(map[string]string{"OS_APPLICATION_CREDENTIAL_ID": "ac", "OS_APPLICATION_CREDENTIAL_SECRET": "ac-secret-1"})}, "ac-secret-1", "does not know the credentials (application credential)"},
		{403, Options{Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})}, "pw-123456", "not allowed"},
		{500, Options{Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})}, "pw-123456", "(password)"},
	} {
		srv, calls := fakeKeystone(t, tc.status)
		tc.opts.AuthURL = srv.URL + "/v3"
		wrapped := 0
		tc.opts.Transport = func(next http.RoundTripper) http.RoundTripper {
			wrapped++
			return next
		}
		_, err := Authenticate(ctx, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("HTTP %d: got %v, want an error with %q and the URL", tc.status, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("HTTP %d: the error shows the secret: %v", tc.status, err)
		}
		if *calls == 0 || wrapped != 1 {
			t.Errorf("HTTP %d: %d requests, transport wrapped %d times", tc.status, *calls, wrapped)
		}
	}

	// Keystone is not there at all.
	srv, _ := fakeKeystone(t, 200)
	srv.Close()
	_, err = Authenticate(ctx, Options{AuthURL: srv.URL + "/v3", Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})})
	if err == nil || !strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "pw-123456") {
		t.Fatalf("unreachable keystone: %v", err)
	}
}

// A Keystone that never answers: the attempt's timeout (Timeout, for the token's POST
// too when it is set) ends the authentication, whatever the machine's speed; the
// duration is only logged.
func TestAuthenticateTimeout(t *testing.T) {
	isolate(t)
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	start := time.Now()
	_, err := Authenticate(context.Background(), Options{AuthURL: srv.URL + "/v3", Timeout: 200 * time.Millisecond,
		Getenv: envOf(map[string]string{"OS_USERNAME": "u", "OS_PASSWORD": "pw-123456"})})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("a silent keystone: %v, want the attempt's timeout", err)
	}
	if strings.Contains(err.Error(), "pw-123456") {
		t.Fatalf("the error shows the password: %v", err)
	}
	t.Logf("a silent keystone failed after %v: %v", time.Since(start), err)
}

func TestRedactor(t *testing.T) {
	var nilRed *Redactor
	if nilRed.String("a secret") != "a secret" {
		t.Fatal("a nil Redactor changes text")
	}
	r := &Redactor{}
	r.Add("", "short", "s3cr3t-one")
	if got := r.String("short s3cr3t-one and s3cr3t-one"); got != "short *** and ***" {
		t.Fatalf("got %q", got)
	}
	// A secret that contains another one is hidden whole, whatever order they came in.
	r.Add("abcdef", "abcdef-ghijkl")
	if got := r.String("key=abcdef-ghijkl"); got != "key=***" {
		t.Fatalf("nested secrets: got %q", got)
	}

	base := errors.New("plain")
	if r.Error(base) != base {
		t.Fatal("an error without secrets is not returned as is")
	}
	if r.Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	inner := fmt.Errorf("auth with s3cr3t-one: %w", ErrNoCredentials)
	red := r.Error(inner)
	if strings.Contains(red.Error(), "s3cr3t-one") || !strings.Contains(red.Error(), "auth with ***") {
		t.Fatalf("redacted error %q", red)
	}
	if !errors.Is(red, ErrNoCredentials) || !errors.Is(red, inner) {
		t.Fatal("the redacted error does not unwrap to the original")
	}

	// Safe for concurrent use.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); r.Add(fmt.Sprintf("secret-%d", i)) }()
		go func() { defer wg.Done(); _ = r.String("secret-1 secret-2") }()
	}
	wg.Wait()
	if got := r.String("secret-1 secret-7"); got != "*** ***" {
		t.Fatalf("after concurrent adds: %q", got)
	}
}

// An attempt's timeout ends a slow GET (which is retried), but by default not a slow
// POST (which is not): that one waits as long as its caller does. The server is slower
// than any deadline an attempt has: it answers only once the attempt's context has none,
// so the result does not depend on how fast the machine is.
func TestAttemptTimeoutSparesPOSTs(t *testing.T) {
	var slow roundTripFunc = func(r *http.Request) (*http.Response, error) {
		if _, bounded := r.Context().Deadline(); bounded {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		return &http.Response{StatusCode: http.StatusCreated, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	do := func(rt http.RoundTripper, method string) error {
		req, _ := http.NewRequestWithContext(context.Background(), method, "http://neutron.test/v2.0/ports", nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	def := attemptTimeout{next: slow, d: 100 * time.Millisecond}
	if err := do(def, http.MethodGet); err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("slow GET: %v, want no answer within 100ms", err)
	}
	if err := do(def, http.MethodPost); err != nil {
		t.Fatalf("slow POST with the default: %v", err)
	}
	told := attemptTimeout{next: slow, d: 100 * time.Millisecond, post: 100 * time.Millisecond}
	if err := do(told, http.MethodPost); err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("slow POST with a timeout set: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
