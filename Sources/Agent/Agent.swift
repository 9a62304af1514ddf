// Agent: see the target's files.
