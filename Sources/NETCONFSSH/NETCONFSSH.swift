// NETCONFSSH: see the target's files.
