package cni

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

// fakeAgent records what reached it and answers from its fields.
type fakeAgent struct {
	calls []any
	att   *api.Attachment
	err   error
}

func (f *fakeAgent) Attach(_ context.Context, r api.AttachRequest) (*api.Attachment, error) {
	f.calls = append(f.calls, r)
	return f.att, f.err
}
func (f *fakeAgent) Detach(_ context.Context, r api.DetachRequest) error {
	f.calls = append(f.calls, r)
	return f.err
}
func (f *fakeAgent) Check(_ context.Context, r api.CheckRequest) error {
	f.calls = append(f.calls, r)
	return f.err
}
func (f *fakeAgent) Collect(_ context.Context, r api.CollectRequest) (*api.CollectResult, error) {
	f.calls = append(f.calls, r)
	return &api.CollectResult{}, f.err
}
func (f *fakeAgent) NetworkReady(_ context.Context, network string) error {
	f.calls = append(f.calls, network)
	return f.err
}

var _ Agent = (*fakeAgent)(nil)

// plugin returns a plugin that reaches f (or fails to dial with dialErr) and keeps
// what it prints.
func plugin(f *fakeAgent, dialErr error) (*Plugin, *[]types.Result) {
	var printed []types.Result
	return &Plugin{
		Dial: func(context.Context, string) (Agent, error) {
			if dialErr != nil {
				return nil, dialErr
			}
			return f, nil
		},
		Print: func(r types.Result, v string) error {
			out, err := r.GetAsVersion(v)
			printed = append(printed, out)
			return err
		},
	}, &printed
}

const conf = `{"cniVersion":"1.1.0","name":"pods","type":"ovn-docker-cni","network":"LS1","securityGroups":["web"]}`

func args(ifName string, stdin string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c0ffee", Netns: "/var/run/netns/cni-1", IfName: ifName,
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0", StdinData: []byte(stdin)}
}

func attachment() *api.Attachment {
	return &api.Attachment{Interface: api.Interface{
		Interface: "eth0", HostIf: "odv1234", MAC: "fa:16:3e:00:00:01", MTU: 1442,
		IPs: []string{"10.0.0.5/24", "fd00::5/64"}, Gateways: []string{"10.0.0.1", "fd00::1"},
	}, DNS: []string{"10.0.0.2"}}
}

// The port options of a configuration reach the agent as run's flags do.
func TestAddPassesPortOptions(t *testing.T) {
	f := &fakeAgent{att: attachment()}
	p, _ := plugin(f, nil)
	c := `{"cniVersion":"1.1.0","name":"pods","type":"ovn-docker-cni","network":"LS1",` +
		`"allowedAddresses":["10.0.0.50","10.0.1.0/24/fa:16:3e:00:00:01"],"qosPolicy":"slow","portSecurity":false}`
	if err := p.Add(args("eth0", c)); err != nil {
		t.Fatal(err)
	}
	want := api.PortOptions{AllowedAddresses: []string{"10.0.0.50", "10.0.1.0/24/fa:16:3e:00:00:01"}, QoSPolicy: "slow", NoPortSecurity: true}
	if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0].(api.AttachRequest).PortOptions, want) {
		t.Fatalf("agent got %+v, want port options %+v", f.calls, want)
	}
}

func TestAddAsksTheAgentAndPrintsItsAnswer(t *testing.T) {
	f := &fakeAgent{att: attachment()}
	p, printed := plugin(f, nil)
	if err := p.Add(args("eth0", conf)); err != nil {
		t.Fatal(err)
	}
	want := api.AttachRequest{Owner: "cni:pods:c0ffee", Network: "LS1", SecurityGroups: []string{"web"},
		NetNS: "/var/run/netns/cni-1", IfName: "eth0", DefaultRoute: true, Container: "c0ffee", ContainerName: "default/web-0",
		Hostname: "web-0"}
	if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], want) {
		t.Fatalf("agent got %+v, want %+v", f.calls, want)
	}
	res := (*printed)[0].(*current.Result)
	b, _ := json.Marshal(res)
	for _, s := range []string{
		`{"name":"odv1234"}`,
		`{"mac":"fa:16:3e:00:00:01","mtu":1442,"name":"eth0","sandbox":"/var/run/netns/cni-1"}`,
		`{"address":"10.0.0.5/24","gateway":"10.0.0.1","interface":1}`,
		`{"address":"fd00::5/64","gateway":"fd00::1","interface":1}`,
		`{"dst":"0.0.0.0/0","gw":"10.0.0.1"}`,
		`{"dst":"::/0","gw":"fd00::1"}`,
		`"dns":{"nameservers":["10.0.0.2"]}`,
	} {
		if !strings.Contains(string(b), s) {
			t.Errorf("result %s lacks %s", b, s)
		}
	}
}

func TestAddAsksForThePool(t *testing.T) {
	f := &fakeAgent{att: attachment()}
	p, _ := plugin(f, nil)
	if err := p.Add(args("eth0", strings.Replace(conf, `"network"`, `"pool":{"min":5,"max":8},"network"`, 1))); err != nil {
		t.Fatal(err)
	}
	if r := f.calls[0].(api.AttachRequest); r.PoolMin != 5 || r.PoolMax != 8 {
		t.Fatalf("pool asked as %d-%d, want 5-8", r.PoolMin, r.PoolMax)
	}
}

func TestAddSecondInterfaceHasNoDefaultRoute(t *testing.T) {
	f := &fakeAgent{att: attachment()}
	p, printed := plugin(f, nil)
	if err := p.Add(args("net1", conf)); err != nil {
		t.Fatal(err)
	}
	if f.calls[0].(api.AttachRequest).DefaultRoute {
		t.Error("net1 asked for the default route")
	}
	if res := (*printed)[0].(*current.Result); len(res.Routes) != 0 || len(res.IPs) != 2 {
		t.Errorf("net1's result: routes %v, IPs %v; want no routes and both addresses", res.Routes, res.IPs)
	}
	// A configuration may say otherwise.
	f.calls = nil
	if err := p.Add(args("net1", strings.Replace(conf, `"network"`, `"defaultRoute":true,"network"`, 1))); err != nil {
		t.Fatal(err)
	}
	if !f.calls[0].(api.AttachRequest).DefaultRoute {
		t.Error(`"defaultRoute": true not passed on`)
	}
}

func TestResultInOlderVersions(t *testing.T) {
	p, printed := plugin(&fakeAgent{att: attachment()}, nil)
	if err := p.Add(args("eth0", strings.Replace(conf, "1.1.0", "0.4.0", 1))); err != nil {
		t.Fatal(err)
	}
	if v := (*printed)[0].Version(); v != "0.4.0" {
		t.Errorf("result in version %s, want the configuration's 0.4.0", v)
	}
}

// codeOf is the CNI error code of err, or fails.
func codeOf(t *testing.T, err error) uint {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a CNI error", err, err)
	}
	return e.Code
}

func TestAgentDownIsTryAgainLater(t *testing.T) {
	for _, dialErr := range []error{api.ErrNoAgent, errors.New("the agent at x does not answer: timeout")} {
		p, printed := plugin(nil, dialErr)
		for name, call := range map[string]func(*skel.CmdArgs) error{"ADD": p.Add, "DEL": p.Del, "CHECK": p.Check, "GC": p.GC} {
			if code := codeOf(t, call(args("eth0", conf))); code != types.ErrTryAgainLater {
				t.Errorf("%s with %v: code %d, want %d", name, dialErr, code, types.ErrTryAgainLater)
			}
		}
		err := p.Status(args("", conf))
		if code := codeOf(t, err); code != types.ErrPluginNotAvailable {
			t.Errorf("STATUS with %v: code %d, want %d", dialErr, code, types.ErrPluginNotAvailable)
		}
		if errors.Is(dialErr, api.ErrNoAgent) && !strings.Contains(err.(*types.Error).Details, "agent.sock") {
			t.Errorf("STATUS's details %q do not name the socket", err.(*types.Error).Details)
		}
		if len(*printed) > 0 {
			t.Errorf("printed %v without an agent", *printed)
		}
	}
}

func TestAgentErrorsKeepTheirMeaning(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint
	}{
		{api.NotFound(errors.New("network LS9 not found")), types.ErrInvalidNetworkConfig},
		{api.Invalid(errors.New("bad")), types.ErrInvalidNetworkConfig},
		{api.Unavailable(errors.New("neutron does not answer")), types.ErrTryAgainLater},
		{api.Conflict(errors.New("being released")), types.ErrTryAgainLater},
		{api.Drift(errors.New("eth0 has MTU 1280, not 1442")), ErrDrift},
		{errors.New("broken"), types.ErrInternal},
	} {
		p, _ := plugin(&fakeAgent{err: tc.err}, nil)
		err := p.Check(args("eth0", conf))
		if code := codeOf(t, err); code != tc.code {
			t.Errorf("%v: code %d, want %d", tc.err, code, tc.code)
		}
		if !strings.Contains(err.Error(), tc.err.Error()) {
			t.Errorf("%q does not say %q", err, tc.err)
		}
	}
}

func TestBadConfiguration(t *testing.T) {
	p, _ := plugin(&fakeAgent{}, nil)
	for _, tc := range []struct {
		conf string
		code uint
		says string
	}{
		{`{`, types.ErrDecodingFailure, "not valid JSON"},
		{`{"cniVersion":"1.1.0","name":"pods","type":"ovn-docker-cni"}`, types.ErrInvalidNetworkConfig, "no Neutron network"},
		{`{"cniVersion":"1.1.0","type":"ovn-docker-cni","network":"LS1"}`, types.ErrInvalidNetworkConfig, `no "name"`},
		{strings.Replace(conf, `"network"`, `"timeout":"soon","network"`, 1), types.ErrInvalidNetworkConfig, "timeout"},
		{strings.Replace(conf, `"network"`, `"pool":{"min":9,"max":3},"network"`, 1), types.ErrInvalidNetworkConfig, `"pool"`},
	} {
		err := p.Add(args("eth0", tc.conf))
		if code := codeOf(t, err); code != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v (code %d), want code %d saying %q", tc.conf, err, code, tc.code, tc.says)
		}
	}
}

func TestCheckSendsWhatAddGave(t *testing.T) {
	f := &fakeAgent{}
	p, _ := plugin(f, nil)
	prev := `{"cniVersion":"1.1.0","interfaces":[{"name":"odv1234"},{"name":"eth0","mac":"fa:16:3e:00:00:01","sandbox":"/var/run/netns/cni-1"}],` +
		`"ips":[{"interface":1,"address":"10.0.0.5/24","gateway":"10.0.0.1"}]}`
	c := strings.Replace(conf, `"network"`, `"prevResult":`+prev+`,"network"`, 1)
	if err := p.Check(args("eth0", c)); err != nil {
		t.Fatal(err)
	}
	want := api.CheckRequest{Owner: "cni:pods:c0ffee", IfName: "eth0", MAC: "fa:16:3e:00:00:01", IPs: []string{"10.0.0.5/24"}}
	if !reflect.DeepEqual(f.calls[0], want) {
		t.Fatalf("check sent %+v, want %+v", f.calls[0], want)
	}
}

func TestDelAndGC(t *testing.T) {
	f := &fakeAgent{}
	p, _ := plugin(f, nil)
	if err := p.Del(args("eth0", conf)); err != nil {
		t.Fatal(err)
	}
	gc := strings.Replace(conf, `"network"`, `"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"},{"containerID":"b","ifname":"net1"}],"network"`, 1)
	if err := p.GC(args("", gc)); err != nil {
		t.Fatal(err)
	}
	want := []any{
		api.DetachRequest{Owner: "cni:pods:c0ffee", IfName: "eth0"},
		api.CollectRequest{OwnerPrefix: "cni:pods:", Keep: []api.AttachmentKey{{Owner: "cni:pods:a", IfName: "eth0"}, {Owner: "cni:pods:b", IfName: "net1"}}},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("agent got %+v, want %+v", f.calls, want)
	}
}

func TestStatus(t *testing.T) {
	f := &fakeAgent{}
	p, _ := plugin(f, nil)
	if err := p.Status(args("", conf)); err != nil || f.calls[0] != "LS1" {
		t.Fatalf("STATUS = %v, asked %v", err, f.calls)
	}
	f.err = api.Unavailable(errors.New("bridge: br-int not found"))
	err := p.Status(args("", conf))
	if code := codeOf(t, err); code != types.ErrPluginNotAvailable || !strings.Contains(err.Error(), "br-int not found") {
		t.Fatalf("STATUS = %v (code %d), want code 50 saying why", err, code)
	}
}

// TestShimImportsNoBackend keeps the binary a shim: the runtime's process talks to the
// agent, never to Neutron, OVSDB or the kernel's netlink itself.
func TestShimImportsNoBackend(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ovn-docker/ovn-docker/cmd/ovn-docker-cni").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/ovn-docker/ovn-docker/internal/api") {
		t.Fatalf("go list -deps gave no internal/api; the test sees nothing:\n%s", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/gophercloud/", "github.com/ovn-kubernetes/libovsdb", "github.com/vishvananda/netlink"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("ovn-docker-cni depends on %s", dep)
			}
		}
	}
}
