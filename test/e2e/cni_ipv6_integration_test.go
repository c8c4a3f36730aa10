//go:build integration

package e2e

import (
	"context"
	"net"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// families checks a CNI result has one address of each family, each with its gateway,
// and a default route of each family.
func families(t *testing.T, p *pod) (v4, v6 net.IP) {
	t.Helper()
	for _, ip := range p.res.IPs {
		if ip.Gateway == nil {
			t.Fatalf("pod %s: address %s has no gateway in ADD's result", p.ns, ip.Address.String())
		}
		if ip.Address.IP.To4() != nil {
			v4 = ip.Address.IP
		} else {
			v6 = ip.Address.IP
		}
	}
	routes := map[string]bool{}
	for _, r := range p.res.Routes {
		routes[r.Dst.String()] = true
	}
	if v4 == nil || v6 == nil || !routes["0.0.0.0/0"] || !routes["::/0"] {
		t.Fatalf("pod %s: ADD's result lacks a family: ips %v, routes %v", p.ns, p.res.IPs, p.res.Routes)
	}
	return v4, v6
}

// TestCNIDualStack: on a dual-stack network, ADD (libcni) gives a pod both families
// (addresses, gateways, default routes) and a pod in another VM reaches it over IPv6 at
// once; with the configuration's pool, the agent keeps interfaces of the network ready,
// with both families, and a pod served from the pool has its IPv6 address set and
// reachable too.
func TestCNIDualStack(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	ls := uniq("DSC")
	mustOVNDocker(t, vm1, "--standalone", "create", "network", ls, "--subnet", "10.161.0.0/24", "--ipv6-subnet", "fd00:161::/64")
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "--standalone", "delete", "network", ls) })
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "--standalone", "gc", "--drain-pools", "--grace", "1s") })
	startPlugin(t, vm1)
	startPlugin(t, vm2)
	for _, vm := range vms {
		t.Cleanup(func() { cleanCNIVM(t, vm) })
	}
	n1 := newCNINet(t, vm1, ls, map[string]any{"pool": map[string]any{"min": 2, "max": 2}})
	n2 := newCNINet(t, vm2, ls)

	p1, p2 := newPodNS(t), newPodNS(t)
	n1.add(t, p1)
	n2.add(t, p2)
	_, a6 := families(t, p1)
	b4, b6 := families(t, p2)
	if ok, out := testutil.Ping(p2.ns, a6.String(), 3); !ok {
		t.Fatalf("pod %s cannot reach pod %s over IPv6 at %s: %s", p2.ns, p1.ns, a6, out)
	}
	if ok, out := testutil.Ping(p1.ns, b4.String(), 3); !ok {
		t.Fatalf("pod %s cannot reach pod %s at %s: %s", p1.ns, p2.ns, b4, out)
	}

	// The pool (declared by the first ADD) fills with interfaces of both families; the
	// next pod takes one.
	ready := waitReady(t, vm1, 2)
	p3 := newPodNS(t)
	n1.add(t, p3)
	if e := podPort(t, vm1, p3); !ready[e.Port] {
		t.Fatalf("pod %s did not get a ready interface: port %s not in the pool %v", p3.ns, e.Port, ready)
	}
	_, c6 := families(t, p3)
	if ok, out := testutil.Ping(p3.ns, b6.String(), 3); !ok {
		t.Fatalf("pod %s (from the pool) cannot reach pod %s over IPv6 at %s: %s", p3.ns, p2.ns, b6, out)
	}
	if ok, out := testutil.Ping(p2.ns, c6.String(), 3); !ok {
		t.Fatalf("pod %s cannot reach pod %s (from the pool) over IPv6 at %s: %s", p2.ns, p3.ns, c6, out)
	}
	// A pool's port was made before the pod had a name: it gets the pod's as its
	// dns_name afterwards, off ADD's critical path.
	nc := s.Network(t, "tenant-a")
	port := podPort(t, vm1, p3).Port
	waitUntil(t, "the pooled port's dns_name", func() (bool, string) {
		var got struct {
			Port struct {
				DNSName string `json:"dns_name"`
			} `json:"port"`
		}
		if err := ports.Get(context.Background(), nc, port).ExtractIntoStructPtr(&got, ""); err != nil {
			return false, err.Error()
		}
		return got.Port.DNSName == p3.ns, "dns_name " + got.Port.DNSName
	})
}
