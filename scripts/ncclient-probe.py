#!/usr/bin/env python3
"""Talks to a NETCONF server with ncclient (a third-party client) and prints what it got as JSON.

Used by SimulatorTests to check that the simulator interoperates with a client other than our
own: hello and framing negotiation, a Junos RPC by name, a CLI <command>, and ietf <get-config>.
"""
import argparse
import json
import sys

from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError
from ncclient.transport.session import NetconfBase


def tree(reply):
    """The reply as an lxml element: the junos handler gives NCElement, the default RPCReply (raw XML)."""
    if etree.iselement(reply):
        return reply
    if isinstance(getattr(reply, "xml", None), str):
        return etree.fromstring(reply.xml.encode())
    return etree.fromstring(reply.tostring)


def texts(reply, name):
    """Trimmed text of every element named `name` in a reply, whatever its namespace."""
    return [(e.text or "").strip() for e in tree(reply).xpath("//*[local-name()=$n]", n=name)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--device", default="junos", help="ncclient device handler: junos or default")
    args = parser.parse_args()

    with manager.connect(host=args.host, port=args.port, username=args.user, key_filename=args.key,
                         hostkey_verify=False, look_for_keys=False, allow_agent=False,
                         device_params={"name": args.device}, timeout=30) as m:
        result = {
            "session_id": m.session_id,
            "server_capabilities": sorted(m.server_capabilities),
            # ncclient's negotiated base (a private attribute; BASE_11 means chunked framing).
            "framing": "chunked" if getattr(m._session, "_base", None) == NetconfBase.BASE_11 else "end-of-message",
        }
        software = m.dispatch(etree.Element("get-software-information"))
        result["software_host_names"] = texts(software, "host-name")
        result["software_versions"] = texts(software, "junos-version")
        if args.device == "junos":
            command = m.command("show version", format="xml")
        else:
            command = m.dispatch(etree.fromstring('<command format="xml">show version</command>'))
        result["command_host_names"] = texts(command, "host-name")
        config = m.get_config(source="running")
        result["config_host_names"] = texts(config, "host-name")
        result["config_in_data"] = bool(tree(config).xpath("//*[local-name()='data']/*[local-name()='configuration']"))
        try:
            m.dispatch(etree.Element("get-no-such-thing"))
            result["unknown_rpc_error"] = None
        except RPCError as error:
            result["unknown_rpc_error"] = {"message": error.message, "tag": error.tag}
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
