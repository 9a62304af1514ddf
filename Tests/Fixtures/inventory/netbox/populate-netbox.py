import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def api(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Token " + token, "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit("%s %s: %s %s" % (method, path, e.code, e.read()[:500]))
juniper = api("POST", "/api/dcim/manufacturers/", {"name": "Juniper", "slug": "juniper"})["id"]
arista = api("POST", "/api/dcim/manufacturers/", {"name": "Arista", "slug": "arista"})["id"]
types = {m: api("POST", "/api/dcim/device-types/", {"manufacturer": juniper if m != "DCS-7050SX3" else arista, "model": m, "slug": m.lower()})["id"]
         for m in ["MX204", "SRX345", "EX4300-48T", "DCS-7050SX3"]}
role = api("POST", "/api/dcim/device-roles/", {"name": "Core router", "slug": "core-router"})["id"]
site = api("POST", "/api/dcim/sites/", {"name": "AMS1", "slug": "ams1", "status": "active"})["id"]
junos = api("POST", "/api/dcim/platforms/", {"name": "Junos", "slug": "junos", "manufacturer": juniper})["id"]
eos = api("POST", "/api/dcim/platforms/", {"name": "Arista EOS", "slug": "eos", "manufacturer": arista})["id"]
api("POST", "/api/extras/custom-fields/", {"name": "netconf_port", "label": "NETCONF port", "type": "integer", "object_types": ["dcim.device"]})
api("POST", "/api/extras/custom-fields/", {"name": "care_agent_group", "label": "care-agent group", "type": "text", "object_types": ["dcim.device"]})
def device(name, platform, model, ips=(), cf=None):
    d = api("POST", "/api/dcim/devices/", {"name": name, "device_type": types[model], "role": role, "site": site, "status": "active",
                                             "platform": platform, "custom_fields": cf or {}})
    iface = api("POST", "/api/dcim/interfaces/", {"device": d["id"], "name": "fxp0", "type": "1000base-t"})["id"]
    patch = {}
    for address in ips:
        ip = api("POST", "/api/ipam/ip-addresses/", {"address": address, "status": "active", "assigned_object_type": "dcim.interface", "assigned_object_id": iface})["id"]
        patch["primary_ip6" if ":" in address else "primary_ip4"] = ip
    if patch:
        api("PATCH", "/api/dcim/devices/%d/" % d["id"], patch)
device("mx-core-01", junos, "MX204", ["192.0.2.1/24"], {"care_agent_group": "core", "netconf_port": 830})
device("mx-core-02", junos, "MX204", ["2001:db8::2/64"])
device("srx-edge-01", junos, "SRX345", ["198.51.100.3/31", "2001:db8::3/64"], {"netconf_port": 2830})
device("ex-no-ip", junos, "EX4300-48T")
device("arista-01", eos, "DCS-7050SX3", ["192.0.2.50/24"])
device("srx-bad-port", junos, "SRX345", ["192.0.2.60/24"], {"netconf_port": 99999})
print("ok")
