package runargs

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	units "github.com/docker/go-units"
)

// Validation follows what the docker CLI checks and, where the CLI leaves it
// to the daemon, what dockerd checks at create time, so that a mistake is
// reported before anything has been allocated in Neutron or OVS.

var (
	// restrictedName is dockerd's rule for container and local volume names.
	restrictedName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	decimal        = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)$`)
	domainLabel    = regexp.MustCompile(`^([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)
)

// minMemory is dockerd's lower bound for --memory on Linux.
const minMemory = 6 * 1024 * 1024

func parseBytes(v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	// RAMInBytes converts through float64, so an oversized value comes out
	// wrapped or saturated, depending on the CPU, instead of failing.
	if err != nil || n < 0 || n == math.MaxInt64 {
		return 0, errors.New("not a size: use a number with an optional unit b, k, m, g, t or p")
	}
	return n, nil
}

func parseCPUs(v string) (int64, error) {
	// Plain decimals only: big.Rat would also take exponents and fractions,
	// which nobody writes for a CPU count.
	if !decimal.MatchString(v) {
		return 0, errors.New("not a decimal number of CPUs")
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return 0, errors.New("not a decimal number of CPUs")
	}
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return 0, errors.New("too precise: at most 9 decimal places")
	}
	if !r.Num().IsInt64() {
		return 0, errors.New("too large")
	}
	return r.Num().Int64(), nil
}

func validateLabel(v string) (string, error) {
	key, _, _ := strings.Cut(v, "=")
	key = strings.TrimLeft(key, " \t")
	if key == "" {
		return "", errors.New("empty label name")
	}
	if strings.ContainsAny(key, " \t") {
		return "", fmt.Errorf("label name %q contains whitespace", key)
	}
	return v, nil
}

func validateIP(v string) (string, error) {
	ip := net.ParseIP(strings.TrimSpace(v))
	if ip == nil {
		return "", errors.New("not an IP address")
	}
	return ip.String(), nil
}

// validateDNSSearch accepts a domain (returned without its trailing dot) or
// "." for the empty search list.
func validateDNSSearch(v string) (string, error) {
	v = strings.Trim(v, " ")
	if v == "." {
		return v, nil
	}
	d := strings.TrimRight(v, " \t\r\n\v\f")
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) >= 255 || !strings.ContainsFunc(d, isLetter) {
		return "", errors.New("not a valid domain")
	}
	for _, l := range strings.Split(d, ".") {
		if !domainLabel.MatchString(l) {
			return "", errors.New("not a valid domain")
		}
	}
	return d, nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// validateExtraHost accepts host:ip, host=ip, an IP in brackets and the
// special "host-gateway", and returns the host:ip form the API expects.
func validateExtraHost(v string) (string, error) {
	host, ip, ok := strings.Cut(v, "=")
	if !ok {
		host, ip, ok = strings.Cut(v, ":")
	}
	if !ok || host == "" || strings.Contains(host, ":") {
		return "", errors.New("want HOST:IP")
	}
	if ip != "host-gateway" {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := validateIP(ip); err != nil {
			return "", fmt.Errorf("%q is not an IP address", ip)
		}
	}
	return host + ":" + ip, nil
}

// validateSysctl enforces docker's list of namespaced sysctls.
func validateSysctl(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return "", errors.New("want NAME=VALUE")
	}
	switch k {
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
		return v, nil
	}
	if strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.") {
		return v, nil
	}
	return "", fmt.Errorf("docker does not allow sysctl %q in a container", k)
}

func parseUlimit(v string) (*container.Ulimit, error) {
	u, err := units.ParseUlimit(v)
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return nil, fmt.Errorf("limit %q is not an integer", ne.Num)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

func parseRestartPolicy(v string) (container.RestartPolicy, error) {
	if v == "" {
		// docker sends an empty policy, which dockerd takes as "no".
		return container.RestartPolicy{}, nil
	}
	name, count, hasCount := strings.Cut(v, ":")
	if hasCount && name == "" {
		return container.RestartPolicy{}, errors.New("no policy before the colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return container.RestartPolicy{}, errors.New(strings.TrimPrefix(err.Error(), "invalid restart policy: "))
	}
	return p, nil
}

// signals are the names dockerd accepts for --stop-signal on Linux,
// without the SIG prefix.
var signals = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CLD": true,
	"CONT": true, "FPE": true, "HUP": true, "ILL": true, "INT": true,
	"IO": true, "IOT": true, "KILL": true, "PIPE": true, "POLL": true,
	"PROF": true, "PWR": true, "QUIT": true, "SEGV": true, "STKFLT": true,
	"STOP": true, "SYS": true, "TERM": true, "TRAP": true, "TSTP": true,
	"TTIN": true, "TTOU": true, "URG": true, "USR1": true, "USR2": true,
	"VTALRM": true, "WINCH": true, "XCPU": true, "XFSZ": true,
}

// sigRTMax is the highest signal number on Linux.
const sigRTMax = 64

func validateSignal(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > sigRTMax {
			return fmt.Errorf("signal number must be between 1 and %d", sigRTMax)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	if signals[name] {
		return nil
	}
	// Real-time signals are named from both ends of their range:
	// RTMIN, RTMIN+1..RTMIN+15, RTMAX-14..RTMAX-1, RTMAX.
	if name == "RTMIN" || name == "RTMAX" {
		return nil
	}
	if off, ok := strings.CutPrefix(name, "RTMIN+"); ok {
		if n, ok := smallInt(off); ok && n >= 1 && n <= 15 {
			return nil
		}
	}
	if off, ok := strings.CutPrefix(name, "RTMAX-"); ok {
		if n, ok := smallInt(off); ok && n >= 1 && n <= 14 {
			return nil
		}
	}
	return errors.New("unknown signal")
}

// smallInt parses a plain decimal without sign or leading zeros, the only
// spelling the real-time signal names use.
func smallInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && strconv.Itoa(n) == s
}

// capabilities are the Linux capabilities dockerd knows, without "CAP_".
var capabilities = map[string]bool{
	"CHOWN": true, "DAC_OVERRIDE": true, "DAC_READ_SEARCH": true, "FOWNER": true,
	"FSETID": true, "KILL": true, "SETGID": true, "SETUID": true, "SETPCAP": true,
	"LINUX_IMMUTABLE": true, "NET_BIND_SERVICE": true, "NET_BROADCAST": true,
	"NET_ADMIN": true, "NET_RAW": true, "IPC_LOCK": true, "IPC_OWNER": true,
	"SYS_MODULE": true, "SYS_RAWIO": true, "SYS_CHROOT": true, "SYS_PTRACE": true,
	"SYS_PACCT": true, "SYS_ADMIN": true, "SYS_BOOT": true, "SYS_NICE": true,
	"SYS_RESOURCE": true, "SYS_TIME": true, "SYS_TTY_CONFIG": true, "MKNOD": true,
	"LEASE": true, "AUDIT_WRITE": true, "AUDIT_CONTROL": true, "SETFCAP": true,
	"MAC_OVERRIDE": true, "MAC_ADMIN": true, "SYSLOG": true, "WAKE_ALARM": true,
	"BLOCK_SUSPEND": true, "AUDIT_READ": true, "PERFMON": true, "BPF": true,
	"CHECKPOINT_RESTORE": true,
}

// validateCapability accepts a capability in any case, with or without the
// CAP_ prefix, or ALL, and returns it as docker sends it: upper case,
// prefixed.
func validateCapability(v string) (string, error) {
	c := strings.ToUpper(v)
	if c == "ALL" {
		return c, nil
	}
	name := strings.TrimPrefix(c, "CAP_")
	if !capabilities[name] {
		return "", errors.New("unknown capability")
	}
	return "CAP_" + name, nil
}

// parseSecurityOpts checks each --security-opt, inlines a seccomp profile
// read from a file (the daemon cannot read the client's files), and takes
// out systempaths=unconfined, which the client turns into empty
// masked/read-only path lists.
func parseSecurityOpts(in []string) (opts []string, unconfinedPaths bool, err error) {
	for _, opt := range in {
		if opt == "no-new-privileges" {
			opts = append(opts, opt)
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			// Older docker spelled the separator ':'; dockerd still takes it.
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok || v == "" {
			return nil, false, fmt.Errorf("invalid --security-opt %q: want KEY=VALUE", opt)
		}
		switch k {
		case "label", "apparmor":
		case "no-new-privileges", "writable-cgroups":
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, false, fmt.Errorf("invalid --security-opt %q: %s must be true or false", opt, k)
			}
		case "systempaths":
			if v != "unconfined" {
				return nil, false, fmt.Errorf("invalid --security-opt %q: systempaths only takes unconfined", opt)
			}
			unconfinedPaths = true
			continue
		case "seccomp":
			if v != "unconfined" && v != "builtin" {
				profile, err := readLimited(v, maxSeccompProfile)
				if err != nil {
					return nil, false, fmt.Errorf("read seccomp profile for --security-opt: %w", err)
				}
				var b bytes.Buffer
				if err := json.Compact(&b, profile); err != nil {
					return nil, false, fmt.Errorf("seccomp profile %s for --security-opt is not JSON: %w", v, err)
				}
				opt = "seccomp=" + b.String()
			}
		default:
			return nil, false, fmt.Errorf("invalid --security-opt %q: unknown option %q", opt, k)
		}
		opts = append(opts, opt)
	}
	return opts, unconfinedPaths, nil
}

// maxSeccompProfile bounds the profile read from the client's disk; docker's
// default profile is well under 100KiB.
const maxSeccompProfile = 4 << 20

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b, nil
}

// Modes a -v spec may carry, by family; each family may appear once.
var volumeModes = map[string]string{
	"rw": "rw", "ro": "rw",
	"z": "label", "Z": "label",
	"private": "propagation", "rprivate": "propagation",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
	"nocopy":     "copy",
	"consistent": "consistency", "cached": "consistency", "delegated": "consistency",
}

func validVolumeMode(mode string) bool {
	if mode == "" {
		return true
	}
	seen := map[string]bool{}
	for _, m := range strings.Split(mode, ",") {
		fam, ok := volumeModes[m]
		if !ok || seen[fam] {
			return false
		}
		seen[fam] = true
	}
	return true
}

func validateTarget(target string) error {
	if target == "" {
		return errors.New("destination is empty")
	}
	if !path.IsAbs(target) {
		return fmt.Errorf("destination %q is not an absolute path", target)
	}
	if path.Clean(target) == "/" {
		return errors.New("destination can't be '/'")
	}
	return nil
}

func validateVolumeName(name string) error {
	if !restrictedName.MatchString(name) {
		return fmt.Errorf("%q is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)", name)
	}
	return nil
}

// volumeSpec is one -v value: a bind or named volume (bind != "") or an
// anonymous volume (anonymous == true).
type volumeSpec struct {
	bind      string
	anonymous bool
	target    string
}

// parseVolume reads [SOURCE:]TARGET[:MODES] with dockerd's Linux rules.
// A source starting with "." is a host path relative to the working
// directory, which the client makes absolute like docker does.
func parseVolume(spec string, abs func(string) (string, error)) (volumeSpec, error) {
	parts := strings.SplitN(spec, ":", 4)
	if parts[0] == "" {
		return volumeSpec{}, errors.New("empty source")
	}
	var src, target, mode string
	switch len(parts) {
	case 1:
		target = parts[0]
	case 2:
		if validVolumeMode(parts[1]) {
			return volumeSpec{}, errors.New("a volume without a source cannot have a mode")
		}
		src, target = parts[0], parts[1]
	case 3:
		src, target, mode = parts[0], parts[1], parts[2]
	default:
		return volumeSpec{}, errors.New("too many colons, want [SOURCE:]TARGET[:MODES]")
	}
	if !validVolumeMode(mode) {
		return volumeSpec{}, fmt.Errorf("invalid mode %q", mode)
	}
	if err := validateTarget(target); err != nil {
		return volumeSpec{}, err
	}
	if src == "" {
		return volumeSpec{anonymous: true, target: target}, nil
	}
	isBind := path.IsAbs(src)
	if !isBind && strings.HasPrefix(src, ".") {
		a, err := abs(src)
		if err != nil {
			return volumeSpec{}, fmt.Errorf("resolve %q: %w", src, err)
		}
		src, isBind = a, true
		_, rest, _ := strings.Cut(spec, ":")
		spec = src + ":" + rest
	}
	if isBind {
		for _, m := range strings.Split(mode, ",") {
			if m == "nocopy" {
				return volumeSpec{}, errors.New("nocopy only applies to volumes, not to host paths")
			}
		}
	} else if err := validateVolumeName(src); err != nil {
		return volumeSpec{}, err
	}
	return volumeSpec{bind: spec, target: target}, nil
}

var propagations = map[mount.Propagation]bool{
	mount.PropagationPrivate: true, mount.PropagationRPrivate: true,
	mount.PropagationShared: true, mount.PropagationRShared: true,
	mount.PropagationSlave: true, mount.PropagationRSlave: true,
}

// parseMount reads a --mount CSV spec. Only bind, volume and tmpfs mounts
// and their commonly used keys are supported; anything else is refused by
// name rather than passed on half-understood.
func parseMount(v string, abs func(string) (string, error)) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return mount.Mount{}, fmt.Errorf("not a comma-separated list: %w", err)
	}
	m := mount.Mount{Type: mount.TypeVolume}
	volumeOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{Labels: map[string]string{}, DriverConfig: &mount.Driver{}}
		}
		return m.VolumeOptions
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range fields {
		key, val, hasVal := strings.Cut(field, "=")
		// docker matches keys case-insensitively.
		key = strings.ToLower(key)
		if !hasVal {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
			case "volume-nocopy":
				volumeOpts().NoCopy = true
			default:
				return mount.Mount{}, fmt.Errorf("field %q must be KEY=VALUE", field)
			}
			continue
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if strings.HasPrefix(val, "./") || val == "." {
				a, err := abs(val)
				if err != nil {
					return mount.Mount{}, fmt.Errorf("resolve %q: %w", val, err)
				}
				m.Source = a
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("%s must be true or false", key)
			}
			m.ReadOnly = b
		case "bind-propagation":
			p := mount.Propagation(strings.ToLower(val))
			if !propagations[p] {
				return mount.Mount{}, fmt.Errorf("unknown bind-propagation %q", val)
			}
			m.BindOptions = &mount.BindOptions{Propagation: p}
		case "volume-nocopy":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return mount.Mount{}, errors.New("volume-nocopy must be true or false")
			}
			volumeOpts().NoCopy = b
		case "tmpfs-size":
			n, err := parseBytes(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("tmpfs-size: %w", err)
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, errors.New("tmpfs-mode must be an octal file mode")
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return mount.Mount{}, fmt.Errorf("key %q is not supported", key)
		}
	}
	if m.Type == "" {
		return mount.Mount{}, errors.New("type is required")
	}
	if err := validateTarget(m.Target); err != nil {
		return mount.Mount{}, err
	}
	switch m.Type {
	case mount.TypeBind:
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return mount.Mount{}, errors.New("volume-* and tmpfs-* keys do not apply to type=bind")
		}
		if m.Source == "" {
			return mount.Mount{}, errors.New("type=bind needs a source")
		}
		if !path.IsAbs(m.Source) {
			return mount.Mount{}, fmt.Errorf("bind source %q is not an absolute path", m.Source)
		}
	case mount.TypeVolume:
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return mount.Mount{}, errors.New("bind-* and tmpfs-* keys do not apply to type=volume")
		}
		if m.Source == "" && m.ReadOnly {
			return mount.Mount{}, errors.New("an anonymous volume cannot be read-only")
		}
		if m.Source != "" {
			if err := validateVolumeName(m.Source); err != nil {
				return mount.Mount{}, err
			}
		}
	case mount.TypeTmpfs:
		if m.BindOptions != nil || m.VolumeOptions != nil {
			return mount.Mount{}, errors.New("bind-* and volume-* keys do not apply to type=tmpfs")
		}
		if m.Source != "" {
			return mount.Mount{}, errors.New("type=tmpfs takes no source")
		}
	default:
		return mount.Mount{}, fmt.Errorf("type %q is not supported (use bind, volume or tmpfs)", m.Type)
	}
	return m, nil
}

// tmpfsFlags are the mount flags a --tmpfs option list may carry; other
// options must be tmpfs data options.
var tmpfsFlags = map[string]bool{
	"defaults": true, "ro": true, "rw": true, "suid": true, "nosuid": true,
	"dev": true, "nodev": true, "exec": true, "noexec": true, "sync": true,
	"async": true, "dirsync": true, "remount": true, "mand": true, "nomand": true,
	"atime": true, "noatime": true, "diratime": true, "nodiratime": true,
	"bind": true, "rbind": true, "unbindable": true, "runbindable": true,
	"private": true, "rprivate": true, "shared": true, "rshared": true,
	"slave": true, "rslave": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "tmpcopyup": true, "notmpcopyup": true,
}

var tmpfsData = map[string]bool{
	"size": true, "mode": true, "uid": true, "gid": true,
	"nr_inodes": true, "nr_blocks": true, "mpol": true,
}

// parseTmpfs reads TARGET[:OPTIONS].
func parseTmpfs(v string) (target, options string, err error) {
	target, options, _ = strings.Cut(v, ":")
	if err := validateTarget(target); err != nil {
		return "", "", err
	}
	if options != "" {
		for _, o := range strings.Split(options, ",") {
			k, _, _ := strings.Cut(o, "=")
			if !tmpfsFlags[o] && !tmpfsData[k] && o != "" {
				return "", "", fmt.Errorf("unknown tmpfs option %q", o)
			}
		}
	}
	return target, options, nil
}

// fixedAddress checks --ip (v4) or --ip6 as docker does: one address of that family.
func fixedAddress(flag, v string, v4 bool) (string, error) {
	if v = strings.TrimSpace(v); v == "" {
		return "", nil
	}
	a, err := netip.ParseAddr(v)
	if err == nil && a.Is4In6() && v4 {
		a = a.Unmap()
	}
	switch {
	case err != nil || a.Zone() != "":
		return "", fmt.Errorf("invalid %s %q: not an IP address", flag, v)
	case v4 && !a.Is4():
		return "", fmt.Errorf("invalid %s %q: not an IPv4 address", flag, v)
	case !v4 && !a.Is6():
		return "", fmt.Errorf("invalid %s %q: not an IPv6 address", flag, v)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		return "", fmt.Errorf("invalid %s %q: not a unicast address", flag, v)
	}
	return a.String(), nil
}
