// Tests for Junos live here.
