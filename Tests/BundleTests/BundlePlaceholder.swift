// Tests for Bundle live here.
