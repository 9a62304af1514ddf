// Tests for SSH live here.
