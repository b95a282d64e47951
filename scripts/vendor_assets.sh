#!/usr/bin/env bash
# Vendor the dashboard's front-end assets from the npm registry into static/vendor/.
#
# Versions and tarball checksums are pinned here; the results are committed, so a fresh checkout
# (and production) never needs npm or a CDN. Re-run after changing a version, then commit.
# sourceMappingURL comments are stripped: the maps are not vendored, and whitenoise's manifest
# storage fails collectstatic on a reference to a missing file.
set -euo pipefail
cd "$(dirname "$0")/.."

BOOTSTRAP=5.3.9
CHARTJS=4.6.1
FONTAWESOME=6.7.2   # pinned @6: the unpinned package is 7.x
# sha256 of each tarball: a re-published or tampered package fails the script.
declare -A SHA256=(
  [bootstrap]=06bdf78289c3c12ea99d40df84eedf6278c724c73eebf38f11f3a65b44ec8c94
  [chart.js]=9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00
  [fontawesome-free]=794284b4ac7f3e30825bbeea1a073f542c45dff83f8146625f600f1015c9d52b
)

DEST=static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fetch() {  # fetch <package> <version> -> unpacks into $WORK/<name>/package
  local pkg=$1 version=$2 name=${1##*/}
  mkdir -p "$WORK/$name"
  (cd "$WORK/$name" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf ./*.tgz)
  local actual
  actual=$(sha256sum "$WORK/$name"/*.tgz | cut -d' ' -f1)
  if [ "$actual" != "${SHA256[$name]}" ]; then
    echo "checksum mismatch for $pkg@$version: $actual" >&2
    exit 1
  fi
}

strip_maps() { sed -i -E '/^\/[*\/]# sourceMappingURL=.*$/d; s|/\*# sourceMappingURL=[^*]*\*/||' "$@"; }

fetch bootstrap "$BOOTSTRAP"
fetch chart.js "$CHARTJS"
fetch @fortawesome/fontawesome-free "$FONTAWESOME"

rm -rf "$DEST/bootstrap" "$DEST/chartjs" "$DEST/fontawesome"
mkdir -p "$DEST/bootstrap" "$DEST/chartjs" "$DEST/fontawesome/css" "$DEST/fontawesome/webfonts"

cp "$WORK/bootstrap/package/dist/css/bootstrap.min.css" "$DEST/bootstrap/"
cp "$WORK/bootstrap/package/dist/js/bootstrap.bundle.min.js" "$DEST/bootstrap/"
cp "$WORK/bootstrap/package/LICENSE" "$DEST/bootstrap/LICENSE"

cp "$WORK/chart.js/package/dist/chart.umd.min.js" "$DEST/chartjs/" 2>/dev/null \
  || cp "$WORK/chart.js/package/dist/chart.umd.js" "$DEST/chartjs/chart.umd.min.js"
cp "$WORK/chart.js/package/LICENSE.md" "$DEST/chartjs/LICENSE.md"

cp "$WORK/fontawesome-free/package/css/all.min.css" "$DEST/fontawesome/css/"
cp "$WORK/fontawesome-free/package/webfonts/"*.woff2 "$DEST/fontawesome/webfonts/"
cp "$WORK/fontawesome-free/package/webfonts/"*.ttf "$DEST/fontawesome/webfonts/"
cp "$WORK/fontawesome-free/package/LICENSE.txt" "$DEST/fontawesome/LICENSE.txt"

strip_maps "$DEST/bootstrap/"*.css "$DEST/bootstrap/"*.js "$DEST/chartjs/"*.js \
  "$DEST/fontawesome/css/"*.css

cat > "$DEST/VERSIONS.txt" <<TXT
bootstrap $BOOTSTRAP (dist/css/bootstrap.min.css, dist/js/bootstrap.bundle.min.js)
chart.js $CHARTJS (dist/chart.umd.min.js)
@fortawesome/fontawesome-free $FONTAWESOME (css/all.min.css, webfonts/*.woff2, *.ttf)
Vendored by scripts/vendor_assets.sh; source map comments stripped.
TXT
echo "Vendored into $DEST:"
find "$DEST" -type f | sort | xargs ls -l | awk '{print $5, $9}'
