#!/usr/bin/env bash
# The README's images, made by the code: report A's batch-size sweep on the real MNIST
# (the README's run: 7 batch sizes x 3 seeds, 20 epochs, about 100 s on 2 CPUs), then
# `sweeps report --html` on it, and into docs/:
#   val_accuracy-vs-batch_size.png         the metric against batch size, seeds' spread
#   learning-curves-by-batch_size.png      every trial's curves overlaid
#   report-html.png                        headless Chromium's screenshot of report.html
#
#   docs/make_images.sh                    # the README's run
#   EPOCHS=2 REPEATS=2 docs/make_images.sh # a quick look (the README's numbers differ)
#
# Needs chromium (Debian's package) and MNIST under $SWEEPS_DATA_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
browser="$(command -v chromium || command -v chromium-browser)" || {
    echo "no chromium on PATH: apt-get install chromium" >&2
    exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

epochs=()
if [ -n "${EPOCHS:-}" ]; then
    epochs=(--epochs "$EPOCHS")
fi
"$python" -m sweeps run report-a-batch-size --repeats "${REPEATS:-3}" "${epochs[@]}" \
    --results "$work/results"
run="$(echo "$work"/results/report-a-batch-size/*)"
"$python" -m sweeps report "$run" --html

cp "$run/plots/val_accuracy-vs-batch_size.png" "$run/plots/learning-curves-by-batch_size.png" docs/
# Offline, as a reader opens it: no host resolves, any request goes to a dead proxy.
"$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --hide-scrollbars --user-data-dir="$work/profile" \
    --host-resolver-rules="MAP * ~NOTFOUND" --proxy-server=http://127.0.0.1:9 \
    --window-size=1200,1600 --screenshot="$PWD/docs/report-html.png" \
    "file://$run/report.html" 2>/dev/null
ls -l docs/val_accuracy-vs-batch_size.png docs/learning-curves-by-batch_size.png \
    docs/report-html.png
