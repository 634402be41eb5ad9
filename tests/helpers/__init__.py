"""What more than one test file uses, by theme: `runs` (run directories, specs, their
frames), `plots` (what a figure or a PNG shows), `processes` (commands watched while they
run, ports), `s3` (a local S3 server). Fixtures are in the conftest.py files; a helper one
test file uses stays in that file."""
