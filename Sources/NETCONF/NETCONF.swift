// NETCONF: see the target's files.
