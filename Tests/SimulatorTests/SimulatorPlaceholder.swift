// Tests for Simulator live here.
