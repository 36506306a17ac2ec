"""Pure decisions: plain values in, frozen plans out; no I/O, no clock, no environment."""
