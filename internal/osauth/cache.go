package osauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// A cached token lets the ovn-docker runs of a VM share one Keystone token: each run
// skips authentication, and Neutron validates the token once instead of once per run.
// The file is root's alone (0600 in a 0700 directory) and named by a hash of the
// credentials, secrets included, so that other credentials never find it.
type cachedToken struct {
	Token   string                 `json:"token"`
	Expires time.Time              `json:"expires"`
	Project string                 `json:"project_id"`
	Catalog *tokens.ServiceCatalog `json:"catalog"`
}

// cacheMargin is how long before its expiry a cached token is no longer handed out.
const cacheMargin = 5 * time.Minute

func cacheFile(dir string, ao gophercloud.AuthOptions) string {
	h := sha256.New()
	for _, f := range []string{ao.IdentityEndpoint, ao.Username, ao.UserID, ao.DomainName, ao.DomainID, ao.Password,
		ao.ApplicationCredentialID, ao.ApplicationCredentialName, ao.ApplicationCredentialSecret, ao.TenantID, ao.TenantName} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	if ao.Scope != nil {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%v", ao.Scope.ProjectID, ao.Scope.ProjectName, ao.Scope.DomainID,
			ao.Scope.DomainName, ao.Scope.TrustID, ao.Scope.System)
	}
	return filepath.Join(dir, "token-"+hex.EncodeToString(h.Sum(nil))[:24]+".json")
}

func loadToken(path string) (*cachedToken, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var c cachedToken
	if json.Unmarshal(b, &c) != nil || c.Token == "" || c.Catalog == nil || time.Until(c.Expires) < cacheMargin {
		return nil, false
	}
	return &c, true
}

func saveToken(path string, pc *gophercloud.ProviderClient) error {
	r, ok := pc.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return nil
	}
	tok, err := r.ExtractToken()
	if err != nil {
		return err
	}
	cat, err := r.ExtractServiceCatalog()
	if err != nil {
		return err
	}
	b, err := json.Marshal(cachedToken{Token: pc.Token(), Expires: tok.ExpiresAt, Project: projectOf(pc), Catalog: cat})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// fromCache makes pc use a cached token and catalog; when Keystone or Neutron refuses
// the token, pc authenticates afresh and the cache follows.
// catalogHas says whether the catalog names an endpoint of the service type where eo asks.
func catalogHas(cat *tokens.ServiceCatalog, typ string, eo gophercloud.EndpointOpts) bool {
	eo.Type = typ
	_, err := openstack.V3EndpointURL(cat, eo)
	return err == nil
}

func fromCache(pc *gophercloud.ProviderClient, c *cachedToken, ao gophercloud.AuthOptions, path string) {
	pc.SetToken(c.Token)
	catalog := c.Catalog
	pc.EndpointLocator = func(opts gophercloud.EndpointOpts) (string, error) {
		return openstack.V3EndpointURL(catalog, opts)
	}
	pc.ReauthFunc = func(ctx context.Context) error {
		// A client of its own: pc's locks are held while this runs.
		fresh, err := openstack.NewClient(ao.IdentityEndpoint)
		if err != nil {
			return err
		}
		fresh.HTTPClient = pc.HTTPClient
		if err := openstack.Authenticate(ctx, fresh, ao); err != nil {
			return err
		}
		pc.CopyTokenFrom(fresh)
		_ = saveToken(path, fresh)
		return nil
	}
}
