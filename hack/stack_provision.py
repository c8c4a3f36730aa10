"""Keystone and Neutron objects of the sandbox stack (called by hack/stack.sh).

  stack_provision.py identity            projects, users, roles, the network service
  stack_provision.py networks T...       each tenant's management network and its router
                                         (before the VMs)
  stack_provision.py vm NAME TENANT [HV] the VM's port on its tenant's management network,
                                         bound to hypervisor HV (default hv1);
                                         prints "port_id mac ip prefix mtu gateway"
  stack_provision.py bind PORT_ID HV     a VM that migrates: its port bound to HV
  stack_provision.py reset PORT_ID...    VMs that boot again: their containers' ports, left
                                         by an earlier run, leave Neutron

Every step is idempotent: objects are looked up by name before they are created.
Admin credentials come from OS_* in the environment.
"""
import base64
import os
import sys

import openstack

RUN = os.environ["STACK_RUN"]
AUTH_URL = os.environ["OS_AUTH_URL"]
NEUTRON_URL = "http://127.0.0.1:9696/"
TENANTS = ["a", "b"]


def secret(name):
    path = os.path.join(RUN, "secrets", name)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        value = base64.b64encode(os.urandom(18)).decode().translate({ord(c): None for c in "/+="})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
    with open(path) as f:
        return f.read().strip()


def admin():
    return openstack.connect(
        auth_url=AUTH_URL, username=os.environ["OS_USERNAME"], password=os.environ["OS_PASSWORD"],
        project_name=os.environ["OS_PROJECT_NAME"], user_domain_name="Default",
        project_domain_name="Default", region_name="RegionOne", identity_api_version="3")


def tenant(letter):
    return openstack.connect(
        auth_url=AUTH_URL, username="user-" + letter, password=secret("user-" + letter),
        project_name="tenant-" + letter, user_domain_name="Default", project_domain_name="Default",
        region_name="RegionOne", identity_api_version="3")


def ensure_project(conn, name):
    return conn.get_project(name, domain_id="default") or conn.create_project(name, domain_id="default")


def ensure_user(conn, name, password, project):
    # Passwords are set once: changing one revokes the user's tokens (Neutron's own among them).
    user = conn.get_user(name, domain_id="default")
    if user is None:
        user = conn.create_user(name, password=password, domain_id="default", default_project=project.id)
    return user


def identity(extra):
    conn = admin()
    service = ensure_project(conn, "service")
    neutron = ensure_user(conn, "neutron", secret("neutron"), service)
    conn.grant_role("admin", user=neutron.id, project=service.id)
    for letter in sorted(set(TENANTS + extra)):
        project = ensure_project(conn, "tenant-" + letter)
        user = ensure_user(conn, "user-" + letter, secret("user-" + letter), project)
        conn.grant_role("member", user=user.id, project=project.id)
    svc = conn.search_services(filters={"type": "network"})
    svc = svc[0] if svc else conn.create_service(name="neutron", type="network", description="Networking")
    have = {e.interface for e in conn.search_endpoints(filters={"service_id": svc.id})}
    for interface in ("public", "internal", "admin"):
        if interface not in have:
            conn.create_endpoint(service_name_or_id=svc.id, url=NEUTRON_URL, interface=interface,
                                 region="RegionOne")


def mgmt_network(conn, letter, create):
    net_name = "mgmt-" + letter
    net = conn.network.find_network(net_name)
    if net is None:
        if not create:
            sys.exit("network %s does not exist: run 'networks' first" % net_name)
        net = conn.network.create_network(name=net_name)
    subnets = list(conn.network.subnets(network_id=net.id))
    if subnets:
        return net, subnets[0]
    if not create:
        sys.exit("network %s has no subnet: run 'networks' first" % net_name)
    third = 10 + ord(letter) - ord("a")
    subnet = conn.network.create_subnet(
        name=net_name + "-subnet", network_id=net.id, ip_version=4,
        cidr="192.168.%d.0/24" % third, gateway_ip="192.168.%d.1" % third, enable_dhcp=False)
    return net, subnet


def mgmt_router(conn, letter, subnet):
    """A router on the management subnet, so that its gateway answers as a cloud's does
    (ARP and ping): setup checks the gateway is still reached after it moves the VM's
    address. It leads nowhere else."""
    name = "mgmt-" + letter + "-router"
    router = conn.network.find_router(name)
    if router is None:
        router = conn.network.create_router(name=name)
    if not any(p.fixed_ips and p.fixed_ips[0]["subnet_id"] == subnet.id
               for p in conn.network.ports(device_id=router.id)):
        conn.network.add_interface_to_router(router, subnet_id=subnet.id)


def networks(letters):
    for letter in sorted(set(letters)):
        conn = tenant(letter)
        _, subnet = mgmt_network(conn, letter, True)
        mgmt_router(conn, letter, subnet)


def vm(name, letter, host="hv1"):
    conn = tenant(letter)
    net, subnet = mgmt_network(conn, letter, False)
    port = conn.network.find_port(name + "-port")
    if port is None:
        port = conn.network.create_port(name=name + "-port", network_id=net.id,
                                        device_owner="compute:nova", device_id="stack-" + name)
    # Bind it to the hypervisor's chassis, as Nova would (admin only).
    bind(port.id, host)
    ip = port.fixed_ips[0]["ip_address"]
    prefix = subnet.cidr.split("/")[1]
    print(port.id, port.mac_address, ip, prefix, net.mtu, subnet.gateway_ip)


def bind(port_id, host):
    """The port bound to chassis host, as Nova does when a VM lands there. ML2/OVN then sets
    the port's requested-chassis to host. The trunk's subports are not touched here: they
    follow the parent in OVN (a child port is claimed where its parent is)."""
    adm = admin()
    if adm.network.get_port(port_id).binding_host_id != host:
        adm.network.update_port(port_id, binding_host_id=host)


def reset(port_ids):
    """Removes what containers of an earlier boot of these VMs hold in Neutron: the
    subports of the VM port's trunk, their ports, and ports ovn-docker tagged for the VM
    that never joined the trunk."""
    conn = admin()
    for vif in port_ids:
        gone = set()
        for trunk in conn.network.trunks(port_id=vif):
            subs = list(trunk.sub_ports or [])
            if subs:
                conn.network.delete_trunk_subports(trunk, [{"port_id": s["port_id"]} for s in subs])
                gone.update(s["port_id"] for s in subs)
        for port in conn.network.ports(tags="ovn-docker-vm=" + vif):
            gone.add(port.id)
        for port in conn.network.ports(description="ovn-docker vm=" + vif):
            gone.add(port.id)
        for pid in gone:
            conn.network.delete_port(pid, ignore_missing=True)
        if gone:
            print("%s: %d container port(s) of an earlier boot removed" % (vif, len(gone)))


def main(argv):
    if argv[:1] == ["identity"]:
        identity(argv[1:])
    elif argv[:1] == ["networks"]:
        networks(argv[1:])
    elif argv[:1] == ["vm"] and len(argv) in (3, 4):
        vm(*argv[1:])
    elif argv[:1] == ["bind"] and len(argv) == 3:
        bind(argv[1], argv[2])
    elif argv[:1] == ["reset"]:
        reset(argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
