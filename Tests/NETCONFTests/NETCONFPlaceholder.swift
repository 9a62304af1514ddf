// Tests for NETCONF live here.
