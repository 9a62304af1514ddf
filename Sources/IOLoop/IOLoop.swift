// IOLoop: see the target's files.
