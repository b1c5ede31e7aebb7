"""Benchmark-exact evaluation: WIDER FACE (official MATLAB semantics), FDDB (discrete and
continuous scores), TinyPerson-style size-range AP. ``tinylib-eval`` is the command line."""
