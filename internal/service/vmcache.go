package service

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// vmPortTTL is how long what Neutron said of the VM's port is taken as still true by
// the processes that follow: a run then skips reading the VM's port and its trunk, two
// of the few Neutron calls it makes. Neither changes while the VM lives; a trunk that
// was replaced shows up on the first subport change, and is read again then.
const vmPortTTL = 10 * time.Minute

const vmPortFile = "vm-port.json"

// vmPortFacts is what Neutron said of the VM's port, for one project's credentials: a
// process with another project's credentials asks Neutron again, and is refused there
// if the port is not its own.
type vmPortFacts struct {
	VIFID       string    `json:"vif_id"`
	CredProject string    `json:"credentials_project"`
	Project     string    `json:"project"`
	MAC         string    `json:"mac"`
	TrunkID     string    `json:"trunk_id,omitempty"`
	Checked     time.Time `json:"checked"`
}

// cachedVMPort returns the VM's port as last read with this project's credentials, if
// it was read lately; vifID "" matches the port of that MAC.
func cachedVMPort(dir, credProject, vifID string, mac net.HardwareAddr, now time.Time) (*vmPortFacts, bool) {
	if credProject == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, vmPortFile))
	if err != nil {
		return nil, false
	}
	var f vmPortFacts
	if json.Unmarshal(b, &f) != nil || f.CredProject != credProject || f.VIFID == "" {
		return nil, false
	}
	if now.Sub(f.Checked) > vmPortTTL || f.Checked.After(now.Add(time.Minute)) {
		return nil, false
	}
	switch {
	case vifID != "" && f.VIFID != vifID:
		return nil, false
	case vifID == "" && (mac == nil || f.MAC != mac.String()):
		return nil, false
	}
	return &f, true
}

// saveVMPort records the VM's port (and its trunk, when known) for the processes that
// follow. It is a hint: failing to write it only costs them a Neutron call.
func saveVMPort(dir string, f vmPortFacts) {
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	writeHint(dir, vmPortFile, b)
}

// writeHint replaces a hint file atomically (0600, like the state).
func writeHint(dir, name string, b []byte) {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return
	}
	if tmp.Close() != nil {
		return
	}
	_ = os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func (f *vmPortFacts) port() *neutron.Port {
	p := &neutron.Port{ID: f.VIFID, ProjectID: f.Project}
	p.MAC, _ = net.ParseMAC(f.MAC)
	return p
}

// networkTTL is how long a network found by name is taken as still true by the VM's
// next runs (with the same project's credentials): a burst of runs on one network then
// asks Neutron for its port alone. A network deleted meanwhile fails the port's creation
// with a 404, and run looks it up again then; a subnet changed meanwhile (its DNS
// servers) is seen at most this late.
const networkTTL = time.Minute

const networksFile = "networks.json"

type cachedNetwork struct {
	Network neutron.Network `json:"network"`
	Checked time.Time       `json:"checked"`
}

func networkKey(credProject, name string) string { return credProject + "/" + name }

// cachedNetworkNamed returns the network last found under name with this project's
// credentials, if that was lately.
func cachedNetworkNamed(dir, credProject, name string, now time.Time) (*neutron.Network, bool) {
	if credProject == "" {
		return nil, false
	}
	all := readNetworks(dir)
	c, ok := all[networkKey(credProject, name)]
	if !ok || now.Sub(c.Checked) > networkTTL || c.Checked.After(now.Add(time.Minute)) || c.Network.ID == "" {
		return nil, false
	}
	n := c.Network
	return &n, true
}

// keepNetwork records (n != nil) or forgets (n == nil) the network under name. Like the
// VM's port, it is a hint: a failure only costs a Neutron call later.
func keepNetwork(dir, credProject, name string, n *neutron.Network, now time.Time) {
	if credProject == "" || name == "" || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, networksFile+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	// A hint is not worth waiting long for: past a second, the write is skipped.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if flock.Lock(ctx, f, unix.LOCK_EX) != nil {
		return
	}
	defer flock.Unlock(f)
	all := readNetworks(dir)
	for k, c := range all {
		if now.Sub(c.Checked) > networkTTL {
			delete(all, k)
		}
	}
	if n == nil {
		delete(all, networkKey(credProject, name))
	} else {
		all[networkKey(credProject, name)] = cachedNetwork{Network: *n, Checked: now.UTC()}
	}
	b, err := json.Marshal(all)
	if err != nil {
		return
	}
	writeHint(dir, networksFile, b)
}

func readNetworks(dir string) map[string]cachedNetwork {
	all := map[string]cachedNetwork{}
	if b, err := os.ReadFile(filepath.Join(dir, networksFile)); err == nil {
		if json.Unmarshal(b, &all) != nil {
			return map[string]cachedNetwork{}
		}
	}
	return all
}

// findNetwork resolves a network by name or ID, from what the VM's processes found
// lately when it can; cached says it did.
func (s *Service) findNetwork(ctx context.Context, nc *neutron.Client, name string) (n *neutron.Network, cached bool, err error) {
	project := s.credProject()
	if n, ok := cachedNetworkNamed(s.cfg.StateDir, project, name, time.Now()); ok {
		return n, true, nil
	}
	n, err = nc.FindNetwork(ctx, name)
	if errors.Is(err, neutron.ErrNotFound) {
		keepNetwork(s.cfg.StateDir, project, name, nil, time.Now())
	}
	if err != nil {
		return nil, false, err
	}
	keepNetwork(s.cfg.StateDir, project, name, n, time.Now())
	return n, false, nil
}

// keepNetwork records the network under name (nil: forgets it) for the VM's next runs.
func (s *Service) keepNetwork(name string, n *neutron.Network) {
	if p := s.credProject(); p != "" {
		keepNetwork(s.cfg.StateDir, p, name, n, time.Now())
	}
}

// credProject is the project of the credentials, once authenticated.
func (s *Service) credProject() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return ""
	}
	return s.session.ProjectID
}
