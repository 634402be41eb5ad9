"""The `sweeps` command line, thin over the rooms below: flags in, one-line errors and
exit codes out (app.main). May import every room of sweeps/, trainers and analysis."""
