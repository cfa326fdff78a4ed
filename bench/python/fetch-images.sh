#!/usr/bin/env bash
# The image dataset of bench/python/dataloader.py: the 64×64 PNG emoji images of four
# npm packages (Apple, Google, Twitter, Facebook sets; ~15,000 real PNG files, ~40 MB),
# fetched with `npm pack` into bench/work/images/<set>/64/*.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-bench/work/images}
mkdir -p bench/work/npm "$DEST"
for set in apple google twitter facebook; do
  (cd bench/work/npm && [ -e emoji-datasource-$set-*.tgz ] 2>/dev/null || npm pack --silent "emoji-datasource-$set@16.0.0" >/dev/null)
  tar xzf bench/work/npm/emoji-datasource-$set-*.tgz -C "$DEST" --wildcards 'package/img/*/64/*.png' --strip-components=2
done
echo "$(find "$DEST" -name '*.png' | wc -l) images in $DEST"
