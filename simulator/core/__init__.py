"""The pure core: archives in, timed events out. No I/O, no clock, no event loop.

Everything here is driven by plain calls with ``now`` passed in, so a unit test runs it exactly
and fast; the server (``simulator.web``) and the command line (``simulator.cli``) sit around it
and depend on it, never the reverse (``tests/test_layering.py``).
"""
