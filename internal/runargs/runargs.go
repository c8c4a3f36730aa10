// Package runargs turns `docker run` arguments into the Docker Engine API
// request that creates the container, the way the docker CLI builds it, so
// that `ovn-docker ... run ARGS` means what `docker run ARGS` means.
//
// ovn-docker owns the container's networking: options that would publish
// ports or pick addresses are refused, the --network value is only
// recorded, and settings that belong to whoever owns the network namespace
// (hostname, DNS, /etc/hosts entries, net.* sysctls) are returned apart
// from the create request so the caller can apply them there.
package runargs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/pflag"
)

// Pull policies, as `docker run --pull` spells them.
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
)

// ErrHelp is returned by Parse when --help is given; the caller prints
// Usage.
var ErrHelp = errors.New("docker run help requested")

// Options is a parsed `docker run` command line.
type Options struct {
	Detach, Remove, Interactive, TTY bool
	Name                             string
	// Pull is PullMissing (the default), PullAlways or PullNever.
	Pull string
	// Network is the raw --net/--network value, "" when absent. ovn-docker
	// replaces the network, so the caller decides what it means.
	Network string

	// Config and HostConfig are the create request as docker run fills it.
	// HostConfig.NetworkMode is left empty for the caller to set.
	Config     *container.Config
	HostConfig *container.HostConfig

	// Settings that belong to the network namespace owner. Docker refuses
	// them on a container that joins another container's network, so the
	// caller applies them to the network sandbox instead. They are in the
	// form docker sends (normalized IPs, search domains without the final
	// dot, ExtraHosts as HOST:IP where IP may be "host-gateway") and nil
	// when not given.
	Hostname, Domainname       string
	DNS, DNSSearch, DNSOptions []string
	ExtraHosts                 []string
	// NetworkSysctls are the net.* --sysctl values; the other sysctls are
	// in HostConfig.Sysctls.
	NetworkSysctls map[string]string
	// IPv4Address and IPv6Address are --ip and --ip6, normalized ("" when not
	// given): the first network's interface gets exactly these addresses.
	IPv4Address string `json:",omitempty"`
	IPv6Address string `json:",omitempty"`
}

// Parse parses the arguments that follow `run`. Like docker, it reads the
// files that --env-file, --label-file and --security-opt seccomp=FILE name,
// makes a bind source starting with "." absolute against the working
// directory, and gives a bare -e/--env-file NAME its value from the process
// environment.
func Parse(args []string) (*Options, error) {
	return ParseWithEnv(args, os.LookupEnv)
}

// ParseWithEnv is Parse with lookupEnv standing in for the process
// environment. With a nil lookupEnv a bare -e NAME is sent bare (the
// container then does not inherit it) and a bare NAME in an env file is
// dropped.
func ParseWithEnv(args []string, lookupEnv func(string) (string, bool)) (*Options, error) {
	p := newParser(lookupEnv)
	if err := p.checkIgnoredShorthands(args); err != nil {
		return nil, err
	}
	if err := p.fs.Parse(args); err != nil {
		return nil, p.flagError(err)
	}
	if p.help {
		return nil, ErrHelp
	}
	return p.build(p.fs.Args())
}

// Usage describes the supported options, for --help.
func Usage() string {
	p := newParser(nil)
	var b strings.Builder
	b.WriteString("Usage:  ovn-docker [OPTIONS] run [RUN OPTIONS] IMAGE [COMMAND] [ARG...]\n\n")
	b.WriteString("Create and start a container like docker run, attached to an OVN logical\n")
	b.WriteString("network through Neutron. Options after IMAGE belong to COMMAND.\n\n")
	b.WriteString("Run options:\n")
	b.WriteString(p.fs.FlagUsages())
	b.WriteString("\nRefused: -p/--publish and -P/--publish-all (the container is reached at its\n")
	b.WriteString("Neutron IP address), --mac-address (Neutron assigns it),\n")
	b.WriteString("--platform (only the VM's own platform runs).\n")
	return b.String()
}

type parser struct {
	fs        *pflag.FlagSet
	lookupEnv func(string) (string, bool)

	help, detach, rm, interactive, tty bool
	privileged, readOnly, init         bool

	name, pull, platform, entrypoint, workdir, user string
	hostname, domainname, restart, stopSignal       string
	logDriver, ip, ip6                              string

	stopTimeout                                int
	cpuShares, pidsLimit                       int64
	memory, memorySwap, shmSize, nanoCPUs      int64
	env, envFiles, labels, labelFiles, volumes []string
	tmpfs, dns, dnsSearch, dnsOptions, hosts   []string
	capAdd, capDrop, securityOpts, logOpts     []string
	sysctls, ulimits, networks                 []string
	mounts                                     []mount.Mount
}

func newParser(lookupEnv func(string) (string, bool)) *parser {
	p := &parser{lookupEnv: lookupEnv}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	// Everything after IMAGE is the container's command, as with docker.
	fs.SetInterspersed(false)
	// Errors are returned, reworded; pflag must print nothing itself.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	p.fs = fs

	fs.BoolVarP(&p.detach, "detach", "d", false, "Run the container in the background")
	fs.BoolVar(&p.rm, "rm", false, "Remove the container when it exits")
	fs.BoolVarP(&p.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&p.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.StringVar(&p.name, "name", "", "Assign a name to the container")
	fs.StringVar(&p.pull, "pull", PullMissing, `Pull the image before running ("always", "missing", "never")`)

	fs.StringVar(&p.entrypoint, "entrypoint", "", "Override the image's ENTRYPOINT (\"\" resets it)")
	fs.VarP(newList(&p.env, p.validateEnv), "env", "e", "Set an environment `variable` (NAME[=VALUE])")
	fs.Var(newList(&p.envFiles, nil), "env-file", "Read environment variables from a `file`")
	fs.VarP(newList(&p.labels, validateLabel), "label", "l", "Set a `label` on the container (KEY[=VALUE])")
	fs.Var(newList(&p.labelFiles, nil), "label-file", "Read labels from a `file`")
	fs.StringVarP(&p.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&p.user, "user", "u", "", "Run as `user` (name|uid[:group|gid])")
	fs.StringVar(&p.restart, "restart", string(container.RestartPolicyDisabled), "Restart policy (no, always, unless-stopped, on-failure[:max-retries])")
	fs.StringVar(&p.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&p.stopTimeout, "stop-timeout", 0, "Seconds to wait for the container to stop before killing it")
	fs.BoolVar(&p.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")

	fs.VarP(newList(&p.volumes, nil), "volume", "v", "Mount a `volume` or host path ([SOURCE:]TARGET[:MODES])")
	fs.Var(&mountValue{mounts: &p.mounts, abs: filepath.Abs}, "mount", "Attach a `mount` (type=bind|volume|tmpfs,source=...,target=...[,readonly])")
	fs.Var(newList(&p.tmpfs, nil), "tmpfs", "Mount a tmpfs at `path` (PATH[:OPTIONS])")

	fs.Var(newList(&p.networks, nil), "network", "Connect to `network` (ovn-docker attaches its own in its place)")
	fs.Var(newList(&p.networks, nil), "net", "Network to connect to (ovn-docker replaces it)")
	fs.StringVarP(&p.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&p.domainname, "domainname", "", "Container NIS domain name")
	fs.Var(newList(&p.dns, validateIP), "dns", "Set a DNS `server`")
	fs.Var(newList(&p.dnsSearch, validateDNSSearch), "dns-search", "Set a DNS search `domain`")
	fs.Var(newList(&p.dnsOptions, nil), "dns-option", "Set a DNS `option`")
	fs.Var(newList(&p.dnsOptions, nil), "dns-opt", "Set a DNS option")
	fs.Var(newList(&p.hosts, validateExtraHost), "add-host", "Add a `host:ip` entry to /etc/hosts")

	fs.BoolVar(&p.privileged, "privileged", false, "Give extended privileges to the container")
	fs.Var(newList(&p.capAdd, validateCapability), "cap-add", "Add a Linux `capability`")
	fs.Var(newList(&p.capDrop, validateCapability), "cap-drop", "Drop a Linux `capability`")
	fs.Var(newList(&p.securityOpts, nil), "security-opt", "Set a security `option` (KEY=VALUE)")
	fs.BoolVar(&p.readOnly, "read-only", false, "Mount the container's root filesystem read-only")

	fs.VarP(&bytesValue{n: &p.memory}, "memory", "m", "Memory limit")
	fs.Var(&bytesValue{n: &p.memorySwap, minusOne: true}, "memory-swap", "Memory plus swap limit, -1 for unlimited swap")
	fs.Var(&cpusValue{n: &p.nanoCPUs}, "cpus", "Number of CPUs")
	fs.Int64VarP(&p.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&p.pidsLimit, "pids-limit", 0, "Limit the number of processes (-1 for unlimited)")
	fs.Var(newList(&p.ulimits, nil), "ulimit", "Set a `ulimit` (NAME=SOFT[:HARD])")
	fs.Var(&bytesValue{n: &p.shmSize}, "shm-size", "Size of /dev/shm")
	fs.Var(newList(&p.sysctls, validateSysctl), "sysctl", "Set a namespaced `sysctl` (NAME=VALUE)")

	fs.StringVar(&p.logDriver, "log-driver", "", "Logging driver for the container")
	fs.Var(newList(&p.logOpts, nil), "log-opt", "Set a logging driver `option` (KEY=VALUE)")

	fs.BoolVar(&p.help, "help", false, "Print usage")

	const reached = "the container is reached at its Neutron IP address, so ports are not published"
	fs.VarP(&refusedValue{msg: "-p/--publish is not supported: " + reached}, "publish", "p", "")
	fs.VarPF(&refusedValue{msg: "-P/--publish-all is not supported: " + reached}, "publish-all", "P", "").NoOptDefVal = "true"
	fs.StringVar(&p.ip, "ip", "", "IPv4 `address` of the first network's interface (the Neutron port's fixed IP)")
	fs.StringVar(&p.ip6, "ip6", "", "IPv6 `address` of the first network's interface (the Neutron port's fixed IP)")
	fs.Var(&refusedValue{msg: "--mac-address is not supported: Neutron assigns the container's addresses"}, "mac-address", "")
	fs.StringVar(&p.platform, "platform", "", "")

	for _, n := range []string{"net", "dns-opt", "publish", "publish-all", "mac-address", "platform"} {
		_ = fs.MarkHidden(n)
	}
	return p
}

// validateEnv is docker's -e rule: any non-empty name; a bare NAME takes
// its value from the environment when set there and stays bare otherwise.
func (p *parser) validateEnv(v string) (string, error) {
	k, _, hasVal := strings.Cut(v, "=")
	if k == "" {
		return "", errors.New("empty variable name")
	}
	if !hasVal && p.lookupEnv != nil {
		if val, ok := p.lookupEnv(k); ok {
			return k + "=" + val, nil
		}
	}
	return v, nil
}

// flagError rewords pflag's errors so that they name the docker run option.
func (p *parser) flagError(err error) error {
	var (
		notExist *pflag.NotExistError
		required *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &notExist):
		group := notExist.GetSpecifiedShortnames()
		if group == "" {
			return unknownOption("--" + notExist.GetSpecifiedName())
		}
		name := "-" + notExist.GetSpecifiedName()
		if len(group) > 1 {
			// "-foo" is read as -f -o -o; say so, it was likely meant as --foo.
			return fmt.Errorf("unknown docker run option %q in %q (see ovn-docker run --help)", name, "-"+group)
		}
		return unknownOption(name)
	case errors.As(err, &required):
		if r, ok := required.GetFlag().Value.(*refusedValue); ok {
			return &refusedError{msg: r.msg}
		}
		return fmt.Errorf("docker run option --%s needs a value", required.GetFlag().Name)
	case errors.As(err, &invalid):
		cause := errors.Unwrap(invalid)
		if isRefused(cause) {
			return cause
		}
		f := invalid.GetFlag()
		switch f.Value.Type() {
		case "bool":
			cause = errors.New("must be true or false")
		case "int", "int64":
			cause = errors.New("must be an integer")
		}
		return fmt.Errorf("invalid --%s %q: %w", f.Name, invalid.GetValue(), cause)
	case errors.As(err, &syntax):
		return unknownOption(syntax.GetSpecifiedFlag())
	case errors.Is(err, pflag.ErrHelp):
		return ErrHelp
	}
	return fmt.Errorf("parse docker run options: %w", err)
}

func unknownOption(name string) error {
	return fmt.Errorf("unknown docker run option %q (see ovn-docker run --help)", name)
}

// checkIgnoredShorthands refuses what pflag would silently skip: a
// shorthand group that continues with "test." (reserved for go test
// flags). It walks the options the way pflag does, up to the image.
func (p *parser) checkIgnoredShorthands(args []string) error {
	for i := 0; i < len(args); i++ {
		s := args[i]
		if len(s) < 2 || s[0] != '-' || s == "--" {
			return nil
		}
		if s[1] == '-' {
			name, _, hasVal := strings.Cut(s[2:], "=")
			if f := p.fs.Lookup(name); f != nil && !hasVal && f.NoOptDefVal == "" {
				i++
			}
			continue
		}
		for j := 1; j < len(s); j++ {
			if strings.HasPrefix(s[j:], "test.") {
				return unknownOption("-" + s[j:])
			}
			f := p.fs.ShorthandLookup(s[j : j+1])
			if f == nil {
				return nil // pflag reports it
			}
			if f.NoOptDefVal != "" {
				continue
			}
			if j == len(s)-1 {
				i++
			}
			break
		}
	}
	return nil
}

// build validates what the options say together and assembles the create
// request.
func (p *parser) build(rest []string) (*Options, error) {
	if len(rest) == 0 {
		return nil, errors.New(`"docker run" requires an image`)
	}
	image := rest[0]
	if _, err := reference.ParseAnyReference(image); err != nil {
		return nil, fmt.Errorf("invalid image %q: %w", image, err)
	}

	pull := p.pull
	switch pull {
	case PullMissing, PullAlways, PullNever:
	case "":
		// docker accepts an empty --pull and then never pulls.
		pull = PullNever
	default:
		return nil, fmt.Errorf("invalid --pull %q: want always, missing or never", p.pull)
	}
	if p.platform != "" {
		return nil, fmt.Errorf("--platform is not supported: only the VM's own platform runs")
	}

	network := ""
	switch len(p.networks) {
	case 0:
	case 1:
		network = p.networks[0]
		if strings.TrimSpace(network) == "" {
			return nil, errors.New("invalid --network: empty network name")
		}
	default:
		return nil, errors.New("--network may be given only once: ovn-docker attaches one network")
	}

	if p.workdir != "" && !path.IsAbs(p.workdir) {
		return nil, fmt.Errorf("invalid --workdir %q: must be an absolute path", p.workdir)
	}
	if p.name != "" && !restrictedName.MatchString(strings.TrimPrefix(p.name, "/")) {
		return nil, fmt.Errorf("invalid --name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed", p.name)
	}
	if p.stopSignal != "" {
		if err := validateSignal(p.stopSignal); err != nil {
			return nil, fmt.Errorf("invalid --stop-signal %q: %w", p.stopSignal, err)
		}
	}

	restart, err := parseRestartPolicy(p.restart)
	if err != nil {
		return nil, fmt.Errorf("invalid --restart %q: %w", p.restart, err)
	}
	if p.rm && !restart.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}

	if err := p.checkResources(); err != nil {
		return nil, err
	}

	env, err := p.buildEnv()
	if err != nil {
		return nil, err
	}
	labels, err := p.buildLabels()
	if err != nil {
		return nil, err
	}
	binds, anonymous, err := p.buildVolumes()
	if err != nil {
		return nil, err
	}
	tmpfs := map[string]string{}
	for _, t := range p.tmpfs {
		target, opts, err := parseTmpfs(t)
		if err != nil {
			return nil, fmt.Errorf("invalid --tmpfs %q: %w", t, err)
		}
		tmpfs[target] = opts
	}

	ulimits := map[string]*container.Ulimit{}
	for _, u := range p.ulimits {
		l, err := parseUlimit(u)
		if err != nil {
			return nil, fmt.Errorf("invalid --ulimit %q: %w", u, err)
		}
		ulimits[l.Name] = l
	}
	sysctls, netSysctls := map[string]string{}, map[string]string{}
	for _, s := range p.sysctls {
		k, v, _ := strings.Cut(s, "=")
		if strings.HasPrefix(k, "net.") {
			netSysctls[k] = v
		} else {
			sysctls[k] = v
		}
	}

	logOpts := map[string]string{}
	for _, o := range p.logOpts {
		k, v, _ := strings.Cut(o, "=")
		logOpts[k] = v
	}
	if p.logDriver == "none" && len(p.logOpts) > 0 {
		return nil, errors.New("--log-opt cannot be used with --log-driver none")
	}

	secOpts, unconfinedPaths, err := parseSecurityOpts(p.securityOpts)
	if err != nil {
		return nil, err
	}

	var entrypoint strslice.StrSlice
	if p.fs.Changed("entrypoint") {
		// `--entrypoint ""` sends [""], which resets the image's entrypoint.
		entrypoint = strslice.StrSlice{p.entrypoint}
	}
	var cmd strslice.StrSlice
	if len(rest) > 1 {
		cmd = strslice.StrSlice(rest[1:])
	}

	cfg := &container.Config{
		User:         p.user,
		Tty:          p.tty,
		OpenStdin:    p.interactive,
		AttachStdin:  p.interactive,
		AttachStdout: true,
		AttachStderr: true,
		Env:          env,
		Cmd:          cmd,
		Image:        image,
		Volumes:      anonymous,
		WorkingDir:   p.workdir,
		Entrypoint:   entrypoint,
		Labels:       labels,
		StopSignal:   p.stopSignal,
	}
	if p.fs.Changed("stop-timeout") {
		t := p.stopTimeout
		cfg.StopTimeout = &t
	}
	// Closing stdin when the attached client goes away is what makes
	// `docker run -i` end when its input does.
	cfg.StdinOnce = cfg.OpenStdin && cfg.AttachStdin
	if p.detach {
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	}

	swappiness := int64(-1)
	oomKillDisable := false
	pids := p.pidsLimit
	hc := &container.HostConfig{
		Binds: binds,
		// Always empty: publishing is refused. docker sends {} all the same.
		PortBindings:   nat.PortMap{},
		AutoRemove:     p.rm,
		RestartPolicy:  restart,
		LogConfig:      container.LogConfig{Type: p.logDriver, Config: logOpts},
		CapAdd:         sortedUnique(p.capAdd),
		CapDrop:        sortedUnique(p.capDrop),
		Privileged:     p.privileged,
		ReadonlyRootfs: p.readOnly,
		SecurityOpt:    secOpts,
		Tmpfs:          tmpfs,
		ShmSize:        p.shmSize,
		Sysctls:        sysctls,
		Mounts:         p.mounts,
		Resources: container.Resources{
			Memory:           p.memory,
			MemorySwap:       p.memorySwap,
			MemorySwappiness: &swappiness,
			OomKillDisable:   &oomKillDisable,
			NanoCPUs:         p.nanoCPUs,
			CPUShares:        p.cpuShares,
			PidsLimit:        &pids,
			Ulimits:          sortedUlimits(ulimits),
			Devices:          []container.DeviceMapping{},
			// docker sends these device lists as [] rather than null.
			BlkioWeightDevice:    []*blkiodev.WeightDevice{},
			BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{},
			BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{},
			BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{},
			BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{},
		},
	}
	if unconfinedPaths {
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
	}
	if p.fs.Changed("init") {
		v := p.init
		hc.Init = &v
	}

	o := &Options{
		Detach:      p.detach,
		Remove:      p.rm,
		Interactive: p.interactive,
		TTY:         p.tty,
		Name:        p.name,
		Pull:        pull,
		Network:     network,
		Config:      cfg,
		HostConfig:  hc,
		Hostname:    p.hostname,
		Domainname:  p.domainname,
		DNS:         p.dns,
		DNSSearch:   p.dnsSearch,
		DNSOptions:  p.dnsOptions,
		ExtraHosts:  p.hosts,
	}
	if len(netSysctls) > 0 {
		o.NetworkSysctls = netSysctls
	}
	if o.IPv4Address, err = fixedAddress("--ip", p.ip, true); err != nil {
		return nil, err
	}
	if o.IPv6Address, err = fixedAddress("--ip6", p.ip6, false); err != nil {
		return nil, err
	}
	return o, nil
}

// checkResources applies dockerd's create-time checks on the limits.
func (p *parser) checkResources() error {
	if p.memory != 0 && p.memory < minMemory {
		return fmt.Errorf("invalid --memory: the minimum is 6MB")
	}
	if p.memorySwap > 0 {
		if p.memory == 0 {
			return errors.New("--memory-swap needs --memory: it limits memory plus swap")
		}
		if p.memorySwap < p.memory {
			return errors.New("--memory-swap must be at least --memory: it limits memory plus swap")
		}
	}
	if p.cpuShares < 0 {
		return fmt.Errorf("invalid --cpu-shares %d: must not be negative", p.cpuShares)
	}
	return nil
}

// buildEnv puts --env-file variables first and -e ones after, so -e wins.
// Repeated -e names collapse to the last value, as the docker CLI does.
func (p *parser) buildEnv() ([]string, error) {
	var env []string
	for _, f := range p.envFiles {
		vars, err := readKVFile("--env-file", f, p.lookupEnv)
		if err != nil {
			return nil, err
		}
		env = append(env, vars...)
	}
	index := map[string]int{}
	var flags []string
	for _, e := range p.env {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := index[k]; ok {
			flags[i] = e
			continue
		}
		index[k] = len(flags)
		flags = append(flags, e)
	}
	return append(env, flags...), nil
}

// buildLabels reads --label-file first so that -l overrides it.
func (p *parser) buildLabels() (map[string]string, error) {
	var kvs []string
	for _, f := range p.labelFiles {
		l, err := readKVFile("--label-file", f, nil)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, l...)
	}
	labels := map[string]string{}
	for _, kv := range append(kvs, p.labels...) {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	return labels, nil
}

// buildVolumes splits -v into binds (host paths and named volumes) and
// anonymous volumes, and refuses two mounts on one target as dockerd does.
func (p *parser) buildVolumes() (binds []string, anonymous map[string]struct{}, err error) {
	anonymous = map[string]struct{}{}
	targets := map[string]bool{}
	seen := map[string]bool{}
	for _, v := range p.volumes {
		if seen[v] {
			continue // docker drops repeated identical specs
		}
		seen[v] = true
		spec, err := parseVolume(v, filepath.Abs)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --volume %q: %w", v, err)
		}
		if spec.anonymous {
			anonymous[v] = struct{}{}
			continue
		}
		t := path.Clean(spec.target)
		if targets[t] {
			return nil, nil, fmt.Errorf("invalid --volume %q: duplicate mount point %s", v, t)
		}
		targets[t] = true
		binds = append(binds, spec.bind)
	}
	for _, m := range p.mounts {
		t := path.Clean(m.Target)
		if targets[t] {
			return nil, nil, fmt.Errorf("invalid --mount: duplicate mount point %s", t)
		}
		targets[t] = true
	}
	return binds, anonymous, nil
}

// sortedUnique orders capabilities the way docker sends them: sorted, each
// once.
func sortedUnique(s []string) strslice.StrSlice {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedUlimits(m map[string]*container.Ulimit) []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(m))
	for _, u := range m {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
