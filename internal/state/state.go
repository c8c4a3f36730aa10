// Package state keeps ovn-docker's local record of the container interfaces of one VM:
// which VLAN, Neutron port, OVS port and veth belong to which container, and how far an
// attach or detach got. Several ovn-docker processes (CLI runs, the daemon) share it: every
// change happens under an exclusive file lock and is written atomically (temp file, fsync,
// rename), so a crash leaves either the old or the new state, never a torn one. The engine
// writes its intent before each outside step; a later run finishes or undoes what an
// interrupted one left.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
)

// Version of the state file's format.
const Version = 1

// Phase is how far an attachment got. Phases are written before the step they name, so
// an attachment found in phase P by a later run may or may not have done P.
type Phase string

const (
	PhaseReserved  Phase = "reserved"  // VLAN chosen, nothing outside yet
	PhasePort      Phase = "port"      // Neutron port being created
	PhaseSubport   Phase = "subport"   // being added to the VM's trunk
	PhasePrepared  Phase = "prepared"  // Neutron port (and subport) ready, nothing local yet
	PhasePlumb     Phase = "plumb"     // veth pair and OVS access port being made
	PhasePlace     Phase = "place"     // container end being moved and configured
	PhaseReplug    Phase = "replug"    // attached, being plumbed again into its owner's new netns (same port)
	PhaseReady     Phase = "ready"     // plumbed, not in a container (pool, or handed to Docker)
	PhaseAttached  Phase = "attached"  // complete
	PhaseDetaching Phase = "detaching" // being released
)

// PoolPolicy is what the daemon declared for a pool.
type PoolPolicy struct {
	Network  string `json:"network"`
	Min, Max int
	Reuse    bool `json:"reuse"` // a released interface goes back, scrubbed, rather than being deleted
}

// Kinds of owners.
const (
	OwnerSandbox  = "sandbox"  // a network sandbox container of the CLI's run
	OwnerEndpoint = "endpoint" // a Docker network endpoint of the plugin
	OwnerPool     = "pool"     // nobody yet: a pool's ready port
	// OwnerCNI: a CNI runtime's container (a pod sandbox); Owner is api.CNIOwner. The
	// runtime's DEL and GC release it, never the agent's judgement of Docker.
	OwnerCNI = "cni"
	// OwnerReserved: a port the agent's run made or took for a container it is about to
	// create on a Docker network (Owner is the run); Docker's IPAM then asks for it by
	// its address.
	OwnerReserved = "reserved"
	// OwnerParked: the port of a container Docker stopped but did not remove (Owner is
	// the container): it keeps its Neutron port, and so its MAC and addresses, for when
	// the container starts again. Its removal releases it.
	OwnerParked = "parked"
	// OwnerReleasing: given up by Docker, being released off the container's critical
	// path; an interrupted release is finished at the next start.
	OwnerReleasing = "releasing"
)

// Attachment is one container interface and everything made for it.
type Attachment struct {
	ID            string   `json:"id"`                       // random; also tagged on the Neutron port
	Owner         string   `json:"owner,omitempty"`          // who holds it: sandbox container id, Docker endpoint id
	OwnerKind     string   `json:"owner_kind,omitempty"`     // OwnerSandbox, OwnerEndpoint or OwnerPool
	Container     string   `json:"container,omitempty"`      // the user's container id
	ContainerName string   `json:"container_name,omitempty"` // and its name
	NetworkID     string   `json:"network_id"`
	NetworkName   string   `json:"network_name,omitempty"`
	IfName        string   `json:"ifname,omitempty"` // eth0, eth1... inside the container
	NetNS         string   `json:"netns,omitempty"`
	VLAN          int      `json:"vlan"`
	Mode          string   `json:"mode"` // trunk | binding-profile
	TrunkID       string   `json:"trunk_id,omitempty"`
	PortID        string   `json:"port_id,omitempty"`
	MAC           string   `json:"mac,omitempty"`
	IPs           []string `json:"ips,omitempty"`      // CIDR notation
	Gateways      []string `json:"gateways,omitempty"` // per IP family
	MTU           int      `json:"mtu,omitempty"`
	ProbeIP       string   `json:"probe_ip,omitempty"`  // the IPv4 OVN's DHCP offers: proves the data path
	ProbeIP6      string   `json:"probe_ip6,omitempty"` // the IPv6 OVN's DHCPv6 advertises, "::" on a stateless subnet (any answer)
	ProbeRA6      string   `json:"probe_ra6,omitempty"` // the IPv6 subnet whose prefix a router advertises (ipv6_ra_mode set)
	// ProbeRouters are the gateways found on router ports when the path was first proven
	// ("IP=port"): a replug, which never asks Neutron, proves the path through them again.
	ProbeRouters []string  `json:"probe_routers,omitempty"`
	HostIf       string    `json:"host_if,omitempty"` // VM-side veth end, also the OVS port's name
	PeerIf       string    `json:"peer_if,omitempty"` // container end's name while in the VM
	Pool         string    `json:"pool,omitempty"`    // pool key while it belongs to a pool
	Phase        Phase     `json:"phase"`
	PID          int       `json:"pid,omitempty"` // process working on it; 0 when at rest
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Error        string    `json:"error,omitempty"` // last failure, for gc and ps
	Note         string    `json:"note,omitempty"`  // what the agent could not do for it, for ps

	IPAMPool string `json:"ipam_pool,omitempty"` // the Docker IPAM pool that handed it out
	// IPAMPool6 is the Docker IPv6 pool that handed out its IPv6 address: Docker asks a
	// dual-stack network's two pools one after the other for one endpoint.
	IPAMPool6 string `json:"ipam_pool6,omitempty"`
	// Secondary: the interface does not carry the container's default route (eth1...).
	Secondary bool `json:"secondary,omitempty"`
	// Restarts: its container's restart policy has Docker start it again by itself.
	Restarts bool `json:"restarts,omitempty"`
}

// State is the whole file.
type State struct {
	Version int `json:"version"`
	// Serial is stamped afresh on every write; it must stay the second member (see cache.go).
	Serial      string                 `json:"serial,omitempty"`
	VIFID       string                 `json:"vif_id,omitempty"` // the VM this state belongs to
	LastVLAN    int                    `json:"last_vlan"`
	Attachments map[string]*Attachment `json:"attachments"`
	Marks       map[string]time.Time   `json:"marks,omitempty"` // gc: orphans seen once, by key
	// Pools are the daemon's pools, by key, so that every process of the VM follows their
	// policy when it releases one of their interfaces.
	Pools map[string]*PoolPolicy `json:"pools,omitempty"`
	// The Docker plugin's own records, kept here so that one lock covers them and the
	// attachments they refer to.
	DockerPools    map[string]*DockerPool    `json:"docker_pools,omitempty"`    // by IPAM pool ID
	DockerNetworks map[string]*DockerNetwork `json:"docker_networks,omitempty"` // by Docker network ID
}

// DockerPool is an address pool the Docker plugin's IPAM gave Docker: an IPv4 subnet of
// a Neutron network or, until that network exists, the range it will have.
type DockerPool struct {
	ID             string    `json:"id"`
	CIDR           string    `json:"cidr"`
	Gateway        string    `json:"gateway,omitempty"`
	NeutronNetwork string    `json:"neutron_network,omitempty"`
	Subnet         string    `json:"subnet,omitempty"`
	Created        bool      `json:"created,omitempty"` // ovn-docker made the Neutron network, and deletes it
	Network        string    `json:"network,omitempty"` // the Docker network it serves, once there is one
	Requested      time.Time `json:"requested"`
	// V6 is an IPv6 pool: it hands out the IPv6 address of the ports its IPv4 pool
	// (the Docker network's) made. Range is --ip-range: the addresses it may give.
	V6    bool   `json:"v6,omitempty"`
	Range string `json:"range,omitempty"`
}

// DockerNetwork is a Docker network of the plugin's network driver.
type DockerNetwork struct {
	ID             string    `json:"id"`
	Name           string    `json:"name,omitempty"` // Docker's name for it, once learned
	Pool           string    `json:"pool"`
	Pool6          string    `json:"pool6,omitempty"` // its IPv6 pool (docker network create --ipv6)
	NeutronNetwork string    `json:"neutron_network"`
	SecurityGroups []string  `json:"security_groups,omitempty"` // IDs, for its ports; none: the project's default
	Created        time.Time `json:"created"`

	// PoolMin and PoolMax (-o pool.min, pool.max) keep interfaces ready for its containers.
	PoolMin int `json:"pool_min,omitempty"`
	PoolMax int `json:"pool_max,omitempty"`

	// Its ports' options (-o neutron.allowed_addresses, neutron.qos_policy,
	// neutron.port_security=false): IP[/MAC] or CIDR[/MAC], a QoS policy's ID.
	AllowedAddresses []string `json:"allowed_addresses,omitempty"`
	QoSPolicy        string   `json:"qos_policy,omitempty"`
	NoPortSecurity   bool     `json:"no_port_security,omitempty"`
}

// UsedVLANs returns the VLANs held by attachments.
func (s *State) UsedVLANs() map[int]string {
	used := make(map[int]string, len(s.Attachments))
	for _, a := range s.Attachments {
		if a.VLAN != 0 {
			used[a.VLAN] = a.ID
		}
	}
	return used
}

// Sorted returns the attachments ordered by creation time, then ID.
func (s *State) Sorted() []*Attachment {
	out := make([]*Attachment, 0, len(s.Attachments))
	for _, a := range s.Attachments {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ByOwner returns the attachments of one owner, ordered by interface name.
func (s *State) ByOwner(owner string) []*Attachment {
	var out []*Attachment
	for _, a := range s.Sorted() {
		if a.Owner == owner {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].IfName < out[j].IfName })
	return out
}

// Store is the state file of one VM in a directory only root can read.
type Store struct {
	dir   string
	cache cache
}

const (
	fileName = "state.json"
	lockName = "state.lock"
)

// Open makes the directory (0700) if needed. The file itself is created on first write.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("state directory not set")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	// The directory may predate us with looser permissions: state names ports and
	// containers, and may sit next to a token cache.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// View calls fn with the current state under a shared lock. fn must not keep it.
func (s *Store) View(ctx context.Context, fn func(*State) error) error {
	unlock, err := s.lock(ctx, unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.read()
	if err != nil {
		return err
	}
	return fn(st)
}

// Update calls fn with the current state under the exclusive lock and writes what fn
// leaves, unless fn fails: then nothing is written and fn's error is returned.
func (s *Store) Update(ctx context.Context, fn func(*State) error) error {
	unlock, err := s.lock(ctx, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.read()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.write(st)
}

// lock takes the lock file's flock, waiting until ctx ends.
func (s *Store) lock(ctx context.Context, how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	if err := flock.Lock(ctx, f, how); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lock state in %s: %w", s.dir, ctx.Err())
		}
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return func() { flock.Unlock(f) }, nil
}

func (s *Store) read() (*State, error) {
	f, err := os.Open(filepath.Join(s.dir, fileName))
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: Version, Attachments: map[string]*Attachment{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer f.Close()
	// The serial is in the file's first bytes: the rest is read only if it is news.
	head := make([]byte, 256)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read state: %w", err)
	}
	serial := serialOf(head[:n])
	if st := s.cache.get(serial); st != nil {
		return st, nil
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	st, err := decode(append(head[:n], rest...), filepath.Join(s.dir, fileName))
	if err != nil {
		return nil, err
	}
	s.cache.put(serial, st)
	return st, nil
}

// decode parses a state file's bytes; path only names it in errors.
func decode(b []byte, path string) (*State, error) {
	st := &State{Version: Version, Attachments: map[string]*Attachment{}}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w", path, err)
	}
	if st.Version > Version {
		return nil, fmt.Errorf("state file %s has version %d, newer than this ovn-docker (%d)", path, st.Version, Version)
	}
	if st.Attachments == nil {
		st.Attachments = map[string]*Attachment{}
	}
	for id, a := range st.Attachments {
		if a == nil || a.ID != id {
			return nil, fmt.Errorf("state file %s is corrupt: attachment %q", path, id)
		}
		if a.VLAN < 0 || a.VLAN > 4094 {
			return nil, fmt.Errorf("state file %s is corrupt: attachment %q has vlan %d", path, id, a.VLAN)
		}
	}
	return st, nil
}

func (s *Store) write(st *State) error {
	st.Version = Version
	st.Serial = newSerial()
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, fileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, fileName)); err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	s.cache.put(st.Serial, st)
	return nil
}
