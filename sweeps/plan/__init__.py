"""What to run: a spec (YAML, presets, the flags' overrides) and its plan of Tune trials.
May import trainers (config checks, memory estimates) and analysis (names)."""
