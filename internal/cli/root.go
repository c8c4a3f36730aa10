package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/service"
)

// Main runs the command line and returns the process's exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	file, err := loadConfig(configPath(args, getenv))
	if err != nil {
		fmt.Fprintf(stderr, "ovn-docker: %s\n", oneLine(err.Error()))
		return 1
	}
	getenv = withConfig(getenv, file)
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, redactor: &osauth.Redactor{}, fault: faultHook(getenv)}
	defer a.close()
	root := newRoot(a)
	root.SetArgs(splitRun(args, globalValueFlags(root)))
	root.SetOut(stdout)
	root.SetErr(stderr)
	err = root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintf(stderr, "ovn-docker: %s\n", a.redactor.String(ex.msg))
		}
		return ex.code
	}
	fmt.Fprintf(stderr, "ovn-docker: %s\n", oneLine(a.redactor.String(err.Error())))
	return 1
}

// exitError ends the process with a given code (a foreground container's exit code).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d %s", e.code, e.msg) }

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

const rootLong = `ovn-docker puts containers that run inside an OpenStack VM onto the tenant's
Neutron networks, through OVN. Each container interface is a Neutron port (Neutron gives
its MAC and IPs) tied to the VM's own port with a VLAN that exists only inside the VM:
the VM's Open vSwitch tags the container's traffic, OVN on the hypervisor strips the tag.

Credentials, as the openstack CLI takes them:
  --cred TOKEN               a Keystone token (with OS_AUTH_URL); or OS_TOKEN
  --cred-file FILE           a file holding the token, mode 0600 or 0400, owned by you
  --os-cloud NAME            a cloud of clouds.yaml; or OS_CLOUD
  OS_AUTH_URL + OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME/OS_*_DOMAIN_NAME
  OS_AUTH_URL + OS_APPLICATION_CREDENTIAL_ID/OS_APPLICATION_CREDENTIAL_SECRET
A token on the command line is visible to other users of the VM (ps): prefer
--cred-file, OS_TOKEN, a clouds.yaml readable only by you, or an application credential
limited to this project. Containers join only networks the credentials' project sees,
through a VM port of that same project: another project's credentials are refused.

Local settings (flag, or environment variable):
  --vif-id     OVN_DOCKER_VIF_ID     the VM's Neutron port (default: found from the uplink's MAC)
  --uplink     OVN_DOCKER_UPLINK     the VM's NIC towards the hypervisor (default eth0)
  --ovsdb      OVN_DOCKER_OVSDB      the VM's Open_vSwitch database (default unix:/var/run/openvswitch/db.sock)
  --bridge     OVN_DOCKER_BRIDGE     the VM's OVS bridge with the uplink on it (default br0)
  --ovs-rundir OVN_DOCKER_OVS_RUNDIR where ovs-vswitchd serves <bridge>.mgmt (default: --ovsdb's directory)
  --state-dir  OVN_DOCKER_STATE_DIR  local state (default /var/lib/ovn-docker)
  --mode       OVN_DOCKER_MODE       trunk (default, tenant credentials) or binding-profile (admin)
  --log-level  OVN_DOCKER_LOG_LEVEL  debug, info, warn (default) or error
  --log-format OVN_DOCKER_LOG_FORMAT text (default) or json
  --standalone OVN_DOCKER_STANDALONE=1  work in this process even when the agent runs
  OVN_DOCKER_API_TIMEOUT      give up on an OpenStack request after this long (default 60s)
  OVN_DOCKER_API_CONCURRENCY  OpenStack requests in flight at once in this VM (default 4)
The agent's own (ovn-docker daemon --help): OVN_DOCKER_PLUGIN_DIR, OVN_DOCKER_PLUGIN_NAME,
OVN_DOCKER_METRICS, OVN_DOCKER_POOLS.

The configuration file (--config FILE or OVN_DOCKER_CONFIG; default
/etc/ovn-docker/ovn-docker.conf, read when it exists) holds these settings as
"name = value" lines, by flag name (bridge = br0) or variable (OVN_DOCKER_BRIDGE=br0),
plus os-cloud and os-region-name; a flag wins over a variable, a variable over the
file. Secrets do not belong in it: use clouds.yaml or --cred-file.

Docker is found through DOCKER_HOST, as the docker CLI finds it.

The agent: when "ovn-docker daemon" runs in this VM (its socket is <state-dir>/agent.sock),
every command asks it, and it acts with its own credentials; otherwise the command does
the work itself, with the same results on the same state.`

const rootExample = `  ovn-docker --cred=$TOKEN create network LS1
  ovn-docker --cred=$TOKEN list networks
  ovn-docker --cred=$TOKEN --vif-id=$VIF_ID --network=LS1 run -d --net=none busybox sleep 1d
  ovn-docker ps
  ovn-docker rm -f CONTAINER`

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "ovn-docker",
		Short:         "Containers inside OpenStack VMs on Neutron networks, through OVN",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(Version, debug.ReadBuildInfo),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(a.stderr, a.s.logLevel, a.s.logFormat, a.redactor)
			if err != nil {
				return err
			}
			a.log = log
			if a.s.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive")
			}
			for _, f := range []string{"cred", "cred-file", "os-cloud", "os-auth-url"} {
				a.credsGiven = a.credsGiven || cmd.Flags().Changed(f)
			}
			return nil
		},
	}
	// cobra's own "completion bash|zsh|fish|powershell", as kubectl and docker have it;
	// the packages install its scripts.
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetVersionTemplate("ovn-docker {{.Version}}\n")
	env := a.getenv
	f := root.PersistentFlags()
	f.StringVar(&a.s.cred, "cred", "", "Keystone token to act with (the spec's credential; other users of the VM can read it: prefer --cred-file)")
	f.StringVar(&a.s.credFile, "cred-file", "", "file holding the Keystone token; mode 0600 or 0400 and owned by you, or it is refused")
	f.StringVar(&a.s.cloud, "os-cloud", "", "cloud of clouds.yaml (default $OS_CLOUD)")
	f.StringVar(&a.s.authURL, "os-auth-url", "", "Keystone URL (default $OS_AUTH_URL)")
	f.StringVar(&a.s.region, "os-region-name", "", "region (default $OS_REGION_NAME)")
	f.StringVar(&a.s.vifID, "vif-id", env("OVN_DOCKER_VIF_ID"), "the VM's Neutron port ID")
	f.StringArrayVar(&a.s.networks, "network", nil, "Neutron network (name or ID) for run; repeat for eth1, eth2...")
	f.StringArrayVar(&a.s.secGroups, "security-group", nil, "security group (name or ID) for run's ports, repeatable (default: the project's default group)")
	f.StringArrayVar(&a.s.port.AllowedAddresses, "allowed-address", nil, "IP[/MAC] or CIDR[/MAC] run's port may also use (Neutron's allowed address pairs: VRRP, keepalived), repeatable")
	f.StringVar(&a.s.port.QoSPolicy, "qos-policy", "", "QoS policy (name or ID) for run's ports")
	f.BoolVar(&a.s.port.NoPortSecurity, "no-port-security", false, "run's ports without port security (nor security groups), where Neutron's policy allows it")
	f.StringVar(&a.s.mode, "mode", envOr(env, "OVN_DOCKER_MODE", "trunk"), "how container ports hang off the VM's port: trunk or binding-profile")
	f.StringVar(&a.s.ovsdb, "ovsdb", envOr(env, "OVN_DOCKER_OVSDB", service.DefaultOVSDB), "the VM's Open_vSwitch database")
	f.StringVar(&a.s.ovsRunDir, "ovs-rundir", env("OVN_DOCKER_OVS_RUNDIR"), "ovs-vswitchd's run directory, where it serves BRIDGE.mgmt for OpenFlow (default: the --ovsdb socket's)")
	f.StringVar(&a.s.bridge, "bridge", envOr(env, "OVN_DOCKER_BRIDGE", service.DefaultBridge), "the VM's OVS bridge")
	f.StringVar(&a.s.uplink, "uplink", envOr(env, "OVN_DOCKER_UPLINK", service.DefaultUplink), "the VM's uplink NIC (finds the vif-id by MAC)")
	f.StringVar(&a.s.stateDir, "state-dir", envOr(env, "OVN_DOCKER_STATE_DIR", service.DefaultStateDir), "local state directory")
	f.StringVar(&a.s.logLevel, "log-level", envOr(env, "OVN_DOCKER_LOG_LEVEL", "warn"), "debug, info, warn or error (logs go to stderr)")
	f.StringVar(&a.s.logFormat, "log-format", envOr(env, "OVN_DOCKER_LOG_FORMAT", "text"), "text (logfmt) or json (one object per line)")
	f.String("config", DefaultConfigFile, "configuration file (OVN_DOCKER_CONFIG); read before the flags, which win over it")
	f.DurationVar(&a.s.timeout, "timeout", 2*time.Minute, "give up on a command after this long")
	f.DurationVar(&a.s.readyTimeout, "ready-timeout", 20*time.Second, "how long to wait for OVN to carry a new interface's packets before the container starts")
	f.BoolVar(&a.s.standalone, "standalone", env("OVN_DOCKER_STANDALONE") == "1", "work in this process even when the VM's agent runs (OVN_DOCKER_STANDALONE=1)")

	root.AddCommand(newCreateCmd(a), newListCmd(a), newDeleteCmd(a), newRunCmd(a), newRmCmd(a),
		newPsCmd(a), newGCCmd(a), newStatusCmd(a), newDoctorCmd(a), newSetupCmd(a), newBenchCmd(a), newPauseCmd(), newVersionCmd(a))
	root.AddCommand(newDaemonCmd(a))
	return root
}

// DocCommand is the command tree with the defaults of a fresh VM (no variables, no
// configuration file), for the man pages and completions a package installs.
func DocCommand() *cobra.Command {
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, redactor: &osauth.Redactor{}}
	return newRoot(a)
}

// withTimeout bounds a command by --timeout.
func (a *app) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.s.timeout)
}

// globalValueFlags names the root's flags that take a value, with and without dashes.
func globalValueFlags(root *cobra.Command) map[string]bool {
	out := map[string]bool{}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() == "bool" {
			return
		}
		out["--"+f.Name] = true
		if f.Shorthand != "" {
			out["-"+f.Shorthand] = true
		}
	})
	return out
}

// splitRun lets everything after `run` reach the run command untouched: Docker's own
// options must not be parsed, or refused, as ovn-docker's. It finds the first word that
// is not a global flag or its value; when that word is "run", it puts "--" after it.
func splitRun(args []string, valueFlags map[string]bool) []string {
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			return args
		}
		if strings.HasPrefix(w, "-") {
			if !strings.Contains(w, "=") && valueFlags[w] {
				i++
			}
			continue
		}
		if w != "run" {
			return args
		}
		out := append([]string{}, args[:i+1]...)
		out = append(out, "--")
		return append(out, args[i+1:]...)
	}
	return args
}

// versionInfo is what version -f json|yaml|value gives.
type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

var versionColumns = []column[versionInfo]{
	{head: "VERSION", key: "version", cell: func(v versionInfo) string { return v.Version }},
	{head: "GO", key: "go", cell: func(v versionInfo) string { return v.Go }},
	{head: "PLATFORM", key: "platform", cell: func(v versionInfo) string { return v.Platform }},
}

func newVersionCmd(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("format") && !cmd.Flags().Changed("column") {
				fmt.Fprintln(a.stdout, "ovn-docker", cmd.Root().Version)
				return nil
			}
			v := versionInfo{Version: cmd.Root().Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			return writeOne(a.stdout, out, versionColumns, v)
		},
	}
	addOutputFlags(cmd, &out)
	cmd.Flags().Lookup("format").Usage += " (default: one line)"
	return cmd
}

// Version is set at build time (-ldflags "-X .../internal/cli.Version=..."); without
// it, buildVersion reads what the Go toolchain recorded.
var Version = "dev"

// buildVersion is the linker-set version, else the module's version of a `go install
// ...@vX`, else the VCS revision a `go build` in a checkout recorded, else "dev".
func buildVersion(set string, read func() (*debug.BuildInfo, bool)) string {
	if set != "dev" && set != "" {
		return set
	}
	bi, ok := read()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}
