// Tests for Agent live here.
