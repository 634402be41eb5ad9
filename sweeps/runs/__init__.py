"""A run on Ray Tune: the checks before anything starts, the run directory, its lock and
manifest, the trainable and the Tuner. May import plan, record, cluster, trainers, analysis."""
