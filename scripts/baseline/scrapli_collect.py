#!/usr/bin/env python3
"""Baseline for scripts/bench-fleet: scrapli-netconf's asyncio driver over asyncssh (the fastest
Python collector we know), N sessions in flight (512 by default), the same 12 requests per
device as care-agent, every raw reply written to disk, strict host-key checking against the
fleet's known_hosts. Needs scrapli<2026.10 (its 2.0 dropped the driver scrapli-netconf imports).

Usage: scrapli_collect.py --inventory CSV --known-hosts FILE --user U --key FILE --out DIR
                          [--sessions 512] [--timeout 10]
Prints one JSON line: {"ok": N, "failed": M}."""

import argparse
import asyncio
import json
import os
import sys

from scrapli_netconf.driver import AsyncNetconfDriver

import common


async def collect(args, limit, device):
    name, host, port = device
    async with limit:
        conn = AsyncNetconfDriver(host=host, port=port, auth_username=args.user, auth_private_key=args.key,
                                  auth_strict_key=True, ssh_known_hosts_file=args.known_hosts,
                                  transport="asyncssh", timeout_socket=args.timeout,
                                  timeout_transport=args.timeout, timeout_ops=args.timeout)
        try:
            await conn.open()
        except Exception as error:
            print(f"scrapli_collect: {name}: open: {error!r}", file=sys.stderr)
            return False
        ok = True
        try:
            for rpc in common.RPCS:
                response = await conn.rpc(filter_=f"<{rpc}/>")
                common.write_reply(args.out, name, rpc, response.result)
                if response.failed and rpc not in ("get-chassis-cluster-status", "get-virtual-chassis-information"):
                    ok = False
        except Exception as error:
            print(f"scrapli_collect: {name}: {error!r}", file=sys.stderr)
            ok = False
        finally:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:
                pass
        return ok


def plain_known_hosts(path, directory):
    """scrapli's asyncssh transport looks keys up by host name alone, not `[host]:port`: the same
    keys under plain names (every simulated device has its own address), still checked strictly."""
    plain = os.path.join(directory, "known_hosts.scrapli")
    with open(path) as source, open(plain, "w") as target:
        for line in source:
            fields = line.split()
            if len(fields) >= 3 and fields[0].startswith("["):
                fields[0] = ",".join(name[1:name.index("]")] for name in fields[0].split(","))
            target.write(" ".join(fields) + "\n")
    return plain


async def run(args):
    os.makedirs(args.out, exist_ok=True)
    args.known_hosts = plain_known_hosts(args.known_hosts, args.out)
    limit = asyncio.Semaphore(args.sessions)
    fleet = common.devices(args.inventory)
    results = await asyncio.gather(*(collect(args, limit, d) for d in fleet))
    print(json.dumps({"ok": sum(results), "failed": len(results) - sum(results)}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sessions", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
