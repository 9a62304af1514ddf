#!/usr/bin/env python3
"""Baseline for scripts/bench-fleet: Python ncclient, a thread pool (32 threads by default), the
same 12 requests per device as care-agent, every raw reply written to disk, strict host-key
checking (each device's key from the fleet's known_hosts, as hostkey_b64).

Usage: ncclient_collect.py --inventory CSV --known-hosts FILE --user U --key FILE --out DIR
                           [--threads 32] [--timeout 10]
Prints one JSON line: {"ok": N, "failed": M}."""

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from ncclient import manager
from ncclient.xml_ import to_ele

import common


def collect(args, keys, device):
    name, host, port = device
    key = keys.get(common.host_entry(host, port))
    if key is None:
        return False
    try:
        with manager.connect(host=host, port=port, username=args.user, key_filename=args.key,
                             hostkey_verify=True, hostkey_b64=key[1], allow_agent=False,
                             look_for_keys=False, timeout=args.timeout, device_params={"name": "junos"}) as m:
            m.timeout = args.timeout
            failed = False
            for rpc in common.RPCS:
                try:
                    reply = m.rpc(to_ele(f"<{rpc}/>"))
                    common.write_reply(args.out, name, rpc, getattr(reply, "xml", None) or str(reply))
                except Exception as error:  # an rpc-error is an answer; the device goes on
                    if "timed out" in str(error).lower() or "session" in str(error).lower():
                        return False
                    failed = failed or rpc != "get-chassis-cluster-status" and rpc != "get-virtual-chassis-information"
            return not failed
    except Exception as error:
        print(f"ncclient_collect: {name}: {error!r}", file=sys.stderr)
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    keys = common.known_host_keys(args.known_hosts)
    fleet = common.devices(args.inventory)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        results = list(pool.map(lambda d: collect(args, keys, d), fleet))
    print(json.dumps({"ok": sum(results), "failed": len(results) - sum(results)}))


if __name__ == "__main__":
    sys.exit(main())
