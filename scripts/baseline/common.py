"""Shared by the baseline collectors of scripts/bench-fleet: the inventory, known_hosts and the
request set, read from a `care-agent simulate fleet` state directory."""

import csv
import os

# care-agent's default set (Sources/Junos/DeviceFacts.swift, FactKind): the same 12 requests.
RPCS = [
    "get-software-information", "get-chassis-inventory", "get-route-engine-information",
    "get-environment-information", "get-alarm-information", "get-system-alarm-information",
    "get-system-storage", "get-system-core-dumps", "get-system-uptime-information",
    "get-virtual-chassis-information", "get-chassis-cluster-status", "get-configuration",
]


def devices(inventory):
    with open(inventory, newline="") as f:
        return [(row["name"], row["host"], int(row["port"])) for row in csv.DictReader(f)]


def known_host_keys(path):
    """[host]:port -> (key type, base64) from an OpenSSH known_hosts written in plain form."""
    keys = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and not line.startswith("#"):
                for name in fields[0].split(","):
                    keys[name] = (fields[1], fields[2])
    return keys


def host_entry(host, port):
    return host if port == 22 else f"[{host}]:{port}"


def write_reply(out, device, rpc, text):
    directory = os.path.join(out, device)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, rpc + ".xml"), "w") as f:
        f.write(text)
