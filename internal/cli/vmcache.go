package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"time"

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
	tmp, err := os.CreateTemp(dir, vmPortFile+".tmp-*")
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
	_ = os.Rename(tmp.Name(), filepath.Join(dir, vmPortFile))
}

func (f *vmPortFacts) port() *neutron.Port {
	p := &neutron.Port{ID: f.VIFID, ProjectID: f.Project}
	p.MAC, _ = net.ParseMAC(f.MAC)
	return p
}
