// SSH: see the target's files.
