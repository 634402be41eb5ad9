"""What the driver records of a run: trial reports decoded once (fanout, the one module
that knows Tune's trials) into events, and the listeners that take them. May import plan
and analysis."""
