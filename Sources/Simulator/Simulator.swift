// Simulator: see the target's files.
