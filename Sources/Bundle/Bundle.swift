// Bundle: see the target's files.
