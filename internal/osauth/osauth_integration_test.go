//go:build integration

package osauth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// These tests authenticate against the sandbox stack's Keystone as tenant-a's user-a,
// with each kind of credential a user may hold, and use the session against Neutron.

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// vm1Env is the OS_* password variables of vm1's env file (tenant-a's user-a).
func vm1Env(t *testing.T, s *testutil.Stack) map[string]string {
	t.Helper()
	vm := s.VM(t, "vm1")
	env := map[string]string{}
	for _, k := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME"} {
		if vm.Env[k] == "" {
			t.Fatalf("vm1/env has no %s", k)
		}
		env[k] = vm.Env[k]
	}
	return env
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// authenticate runs osauth.Authenticate and logs how long it took.
func authenticate(t *testing.T, what string, o osauth.Options) (*osauth.Session, error) {
	t.Helper()
	start := time.Now()
	sess, err := osauth.Authenticate(context.Background(), o)
	t.Logf("latency Authenticate %-36s %v", what, time.Since(start).Round(time.Millisecond))
	return sess, err
}

// tenantA is what the stack's Keystone says about tenant-a: its project ID.
func tenantA(t *testing.T, s *testutil.Stack) string {
	t.Helper()
	pc, _ := s.Provider(t, "tenant-a")
	p, err := pc.GetAuthResult().(tokens.CreateResult).ExtractProject()
	if err != nil || p.Name != "tenant-a" || p.ID == "" {
		t.Fatalf("tenant-a's project: %+v, %v", p, err)
	}
	return p.ID
}

func identity(t *testing.T, sess *osauth.Session) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewIdentityV3(sess.Provider, sess.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// worksAsTenantA checks the session against Neutron: it sees tenant-a's own network.
func worksAsTenantA(t *testing.T, sess *osauth.Session) {
	t.Helper()
	nc, err := openstack.NewNetworkV2(sess.Provider, sess.Endpoint)
	if err != nil {
		t.Fatalf("neutron in the catalog: %v", err)
	}
	start := time.Now()
	pages, err := networks.List(nc, networks.ListOpts{Name: "mgmt-a"}).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list networks with a %s session: %v", sess.Method, err)
	}
	t.Logf("latency first Neutron call (%s)%*s %v", sess.Method, 20-len(sess.Method), "", time.Since(start).Round(time.Millisecond))
	all, err := networks.ExtractNetworks(pages)
	if err != nil || len(all) != 1 {
		t.Fatalf("a %s session sees %d networks named mgmt-a (%v), want 1", sess.Method, len(all), err)
	}
}

// issueToken gets a fresh tenant-a token, revoked again at the end of the test.
func issueToken(t *testing.T, s *testutil.Stack) (string, *osauth.Session) {
	t.Helper()
	sess, err := authenticate(t, "(to issue a token)", osauth.Options{Getenv: envOf(vm1Env(t, s))})
	if err != nil {
		t.Fatal(err)
	}
	tok := sess.Provider.TokenID
	t.Cleanup(func() { _ = tokens.Revoke(context.Background(), identity(t, sess), tok).Err })
	return tok, sess
}

// checkRefused asserts one clear error that does not carry the secret.
func checkRefused(t *testing.T, err error, secret, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("authenticated with bad credentials")
	}
	msg := err.Error()
	t.Logf("refused: %s", strings.ReplaceAll(msg, secret, "<SECRET>"))
	if strings.Contains(msg, secret) {
		t.Fatal("the error carries the secret")
	}
	if !strings.Contains(msg, want) || !strings.Contains(msg, "http://127.0.0.1:5000/v3") {
		t.Fatalf("error %q, want %q and Keystone's URL", msg, want)
	}
	if strings.Contains(msg, "Expected HTTP response code") || strings.Count(msg, "\n") > 0 {
		t.Fatalf("error %q is a dump, not one clear line", msg)
	}
}

func TestPasswordFromOSVariables(t *testing.T) {
	s := testutil.LoadStack(t)
	env := vm1Env(t, s)
	red := &osauth.Redactor{}
	sess, err := authenticate(t, "password (vm1/env)", osauth.Options{Getenv: envOf(env), Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Method != "password" || sess.ProjectID != tenantA(t, s) || sess.Provider.TokenID == "" {
		t.Fatalf("session %+v, want a password session of tenant-a", sess)
	}
	if red.String(env["OS_PASSWORD"]) != "***" {
		t.Fatal("the password is not registered with the redactor")
	}
	worksAsTenantA(t, sess)

	// An openrc file as Horizon writes it names the project by ID and by name, and the
	// project's domain by ID.
	horizon := map[string]string{"OS_AUTH_URL": env["OS_AUTH_URL"], "OS_USERNAME": env["OS_USERNAME"], "OS_PASSWORD": env["OS_PASSWORD"],
		"OS_PROJECT_ID": tenantA(t, s), "OS_PROJECT_NAME": "tenant-a", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_ID": "default",
		"OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}
	sess, err = authenticate(t, "password (Horizon openrc)", osauth.Options{Getenv: envOf(horizon)})
	if err != nil {
		t.Fatalf("Horizon-style openrc: %v", err)
	}
	if sess.ProjectID != tenantA(t, s) {
		t.Fatalf("Horizon-style openrc: project %q", sess.ProjectID)
	}
	worksAsTenantA(t, sess)
}

// TestPasswordSessionReauthenticates: a session made from a password outlives its token:
// when Keystone refuses the token, the provider authenticates again and the call succeeds.
func TestPasswordSessionReauthenticates(t *testing.T) {
	s := testutil.LoadStack(t)
	sess, err := authenticate(t, "password", osauth.Options{Getenv: envOf(vm1Env(t, s))})
	if err != nil {
		t.Fatal(err)
	}
	ic := identity(t, sess)
	old := sess.Provider.TokenID
	other, _ := issueToken(t, s)
	if err := tokens.Revoke(context.Background(), ic, old).Err; err != nil {
		t.Fatalf("revoke the session's token: %v", err)
	}
	// Keystone itself checks revocations on every call, so the next call meets a 401.
	if ok, err := tokens.Validate(context.Background(), ic, other); err != nil || !ok {
		t.Fatalf("validate a token after the session's own was revoked: %v, %v", ok, err)
	}
	if sess.Provider.TokenID == old {
		t.Fatal("the provider still holds the revoked token")
	}
	_ = tokens.Revoke(context.Background(), ic, sess.Provider.TokenID).Err
}

func TestCloudsYAML(t *testing.T) {
	s := testutil.LoadStack(t)
	for _, o := range []osauth.Options{
		{Cloud: "tenant-a", Getenv: envOf(map[string]string{"OS_CLIENT_CONFIG_FILE": s.CloudsFile()})},
		{Getenv: envOf(map[string]string{"OS_CLOUD": "tenant-a", "OS_CLIENT_CONFIG_FILE": s.CloudsFile()})},
	} {
		sess, err := authenticate(t, "clouds.yaml", o)
		if err != nil {
			t.Fatal(err)
		}
		if sess.Method != "clouds.yaml" || sess.ProjectID != tenantA(t, s) {
			t.Fatalf("session %+v, want a clouds.yaml session of tenant-a", sess)
		}
		worksAsTenantA(t, sess)
	}
	_, err := authenticate(t, "clouds.yaml, unknown cloud", osauth.Options{Cloud: "tenant-z",
		Getenv: envOf(map[string]string{"OS_CLIENT_CONFIG_FILE": s.CloudsFile()})})
	if err == nil || !strings.Contains(err.Error(), `cloud "tenant-z"`) {
		t.Fatalf("unknown cloud: %v", err)
	}
}

func TestTokenPassthrough(t *testing.T) {
	s := testutil.LoadStack(t)
	tok, _ := issueToken(t, s)
	authURL := s.VM(t, "vm1").Env["OS_AUTH_URL"]
	for _, tc := range []struct {
		what string
		o    osauth.Options
	}{
		{"token (--cred)", osauth.Options{Token: tok, Getenv: envOf(map[string]string{"OS_AUTH_URL": authURL})}},
		{"token (OS_TOKEN)", osauth.Options{Getenv: envOf(map[string]string{"OS_AUTH_URL": authURL, "OS_TOKEN": tok})}},
	} {
		red := &osauth.Redactor{}
		tc.o.Redactor = red
		sess, err := authenticate(t, tc.what, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if sess.Method != "token" || sess.ProjectID != tenantA(t, s) || sess.Provider.TokenID != tok {
			t.Fatalf("%s: method %q project %q, same token %v", tc.what, sess.Method, sess.ProjectID, sess.Provider.TokenID == tok)
		}
		if red.String(tok) != "***" {
			t.Fatalf("%s: the token is not registered with the redactor", tc.what)
		}
		worksAsTenantA(t, sess)
	}
}

func TestApplicationCredential(t *testing.T) {
	s := testutil.LoadStack(t)
	ctx := context.Background()
	env := vm1Env(t, s)
	owner, err := authenticate(t, "password", osauth.Options{Getenv: envOf(env)})
	if err != nil {
		t.Fatal(err)
	}
	ic := identity(t, owner)
	me, err := tokens.Get(ctx, ic, owner.Provider.TokenID).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	name := "ovn-docker-it-" + randomHex(t)
	ac, err := applicationcredentials.Create(ctx, ic, me.ID, applicationcredentials.CreateOpts{Name: name,
		Description: "ovn-docker osauth integration test"}).Extract()
	if err != nil {
		t.Fatalf("create application credential: %v", err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			if err := applicationcredentials.Delete(context.Background(), ic, me.ID, ac.ID).ExtractErr(); err != nil {
				t.Errorf("delete application credential %s: %v", ac.ID, err)
			}
		}
	})
	if ac.Secret == "" || ac.ProjectID != tenantA(t, s) {
		t.Fatalf("application credential %s: project %q, secret given %v", ac.ID, ac.ProjectID, ac.Secret != "")
	}

	byID := map[string]string{"OS_AUTH_URL": env["OS_AUTH_URL"], "OS_APPLICATION_CREDENTIAL_ID": ac.ID, "OS_APPLICATION_CREDENTIAL_SECRET": ac.Secret}
	byName := map[string]string{"OS_AUTH_URL": env["OS_AUTH_URL"], "OS_APPLICATION_CREDENTIAL_NAME": name, "OS_APPLICATION_CREDENTIAL_SECRET": ac.Secret,
		"OS_USERNAME": env["OS_USERNAME"], "OS_USER_DOMAIN_NAME": env["OS_USER_DOMAIN_NAME"]}
	for what, e := range map[string]map[string]string{"by ID": byID, "by name": byName} {
		red := &osauth.Redactor{}
		sess, err := authenticate(t, "application credential "+what, osauth.Options{Getenv: envOf(e), Redactor: red})
		if err != nil {
			t.Fatalf("%s: %s", what, strings.ReplaceAll(err.Error(), ac.Secret, "<SECRET>"))
		}
		if sess.Method != "application credential" || sess.ProjectID != tenantA(t, s) {
			t.Fatalf("%s: method %q project %q", what, sess.Method, sess.ProjectID)
		}
		if red.String(ac.Secret) != "***" {
			t.Fatalf("%s: the secret is not registered with the redactor", what)
		}
		worksAsTenantA(t, sess)
	}

	// A wrong secret is refused without showing it.
	wrong := "wrong-" + randomHex(t)
	bad := map[string]string{"OS_AUTH_URL": env["OS_AUTH_URL"], "OS_APPLICATION_CREDENTIAL_ID": ac.ID, "OS_APPLICATION_CREDENTIAL_SECRET": wrong}
	_, err = authenticate(t, "application credential, wrong secret", osauth.Options{Getenv: envOf(bad)})
	checkRefused(t, err, wrong, "refused the credentials (application credential)")

	// Deleted: it is gone for Keystone, and refused.
	if err := applicationcredentials.Delete(ctx, ic, me.ID, ac.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	deleted = true
	if _, err := applicationcredentials.Get(ctx, ic, me.ID, ac.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("deleted application credential: %v", err)
	}
	_, err = authenticate(t, "application credential, deleted", osauth.Options{Getenv: envOf(byID)})
	checkRefused(t, err, ac.Secret, "does not know the credentials (application credential)")
	_, err = authenticate(t, "application credential, deleted, by name", osauth.Options{Getenv: envOf(byName)})
	checkRefused(t, err, ac.Secret, "the credentials (application credential)")
}

func TestBadPassword(t *testing.T) {
	s := testutil.LoadStack(t)
	env := vm1Env(t, s)
	wrong := "wrong-" + randomHex(t)
	env["OS_PASSWORD"] = wrong
	red := &osauth.Redactor{}
	_, err := authenticate(t, "password, wrong", osauth.Options{Getenv: envOf(env), Redactor: red})
	checkRefused(t, err, wrong, "refused the credentials (password)")
	if red.String("pw "+wrong) != "pw ***" {
		t.Fatal("the wrong password is not registered with the redactor")
	}
}

func TestInvalidToken(t *testing.T) {
	s := testutil.LoadStack(t)
	bogus := "gAAAAABbogus" + randomHex(t)
	_, err := authenticate(t, "token, invalid", osauth.Options{Token: bogus,
		Getenv: envOf(map[string]string{"OS_AUTH_URL": s.VM(t, "vm1").Env["OS_AUTH_URL"]})})
	checkRefused(t, err, bogus, "(expired, revoked or invalid)")
}

func TestRevokedToken(t *testing.T) {
	s := testutil.LoadStack(t)
	tok, issuer := issueToken(t, s)
	if err := tokens.Revoke(context.Background(), identity(t, issuer), tok).Err; err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err := authenticate(t, "token, revoked", osauth.Options{Token: tok,
		Getenv: envOf(map[string]string{"OS_AUTH_URL": s.VM(t, "vm1").Env["OS_AUTH_URL"]})})
	checkRefused(t, err, tok, "(expired, revoked or invalid)")
}

func TestDocumentedErrors(t *testing.T) {
	s := testutil.LoadStack(t)
	env := vm1Env(t, s)
	delete(env, "OS_AUTH_URL")
	_, err := authenticate(t, "no OS_AUTH_URL", osauth.Options{Getenv: envOf(env)})
	if err == nil || !strings.Contains(err.Error(), "no Keystone URL: set OS_AUTH_URL") || strings.Contains(err.Error(), env["OS_PASSWORD"]) {
		t.Fatalf("no OS_AUTH_URL: %v", err)
	}
	_, err = authenticate(t, "no credentials", osauth.Options{Getenv: envOf(map[string]string{"OS_AUTH_URL": s.VM(t, "vm1").Env["OS_AUTH_URL"]})})
	if !errors.Is(err, osauth.ErrNoCredentials) {
		t.Fatalf("no credentials: got %v, want ErrNoCredentials", err)
	}
}
