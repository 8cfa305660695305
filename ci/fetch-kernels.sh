#!/usr/bin/env bash
# Fetch the test kernels from Debian's packages into the cache (outside the
# repo) and print the directory. For each suite it leaves:
#   SUITE/vmlinuz       the bzImage as shipped
#   SUITE/vmlinux       the decompressed ELF (extracted with the system's own
#                       lz4/xz tools, independently of Cocoon's decompressors)
#   SUITE/readelf-n.txt `readelf -n vmlinux`, the reference for note parsing
#   SUITE/package       the package file name (the cache key)
#   SUITE/modules/      the PV block and network frontends (xen-blkfront,
#                       xen-netfront) and what they depend on, uncompressed, in
#                       load order (modules/order); the cloud kernels build them as modules
#   SUITE/variants/     (first suite only) the same kernel re-packed by the system's
#                       own compressors: bzImages with xz (BCJ, as Linux's xz_wrap),
#                       lzma, zstd and gzip payloads, and a whole-file gzip ELF
# Package versions are resolved at run time; a newer version replaces an old one.
# Fails (non-zero) when a kernel cannot be fetched: tests never skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${COCOON_CACHE:-$HOME/.cache/cocoon}
OUT=$CACHE/kernels
SUITES=${COCOON_KERNEL_SUITES:-"bookworm bullseye"}
mkdir -p "$OUT"

log() { printf '[fetch-kernels] %s\n' "$*" >&2; }

# shellcheck source=ci/apt-view.sh
. ci/apt-view.sh
# apt options for a private view of one suite (never touches the machine's sources).
apt_for() {
  local suite=$1 dir=$CACHE/apt/$1
  mkdir -p "$dir"
  if [ ! -f "$dir/sources.list" ]; then
    {
      echo "deb http://deb.debian.org/debian $suite main"
      echo "deb http://deb.debian.org/debian $suite-updates main"
      echo "deb http://deb.debian.org/debian-security $suite-security main"
    } >"$dir/sources.list"
  fi
  apt_view "$dir"
}

for suite in $SUITES; do
  apt_for "$suite"
  dir=$CACHE/apt/$suite
  # Refresh the lists at most once a day.
  if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    log "updating package lists for $suite"
    apt-get "${APT_OPTS[@]}" update -qq >&2 || { log "apt-get update for $suite failed"; exit 1; }
  fi
  pkg=$(apt-cache "${APT_OPTS[@]}" depends linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | grep -v unsigned | head -1)
  [ -n "$pkg" ] || { log "cannot resolve linux-image-cloud-amd64 in $suite"; exit 1; }
  ver=$(apt-cache "${APT_OPTS[@]}" show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
  key="${pkg}_${ver}"
  dest=$OUT/$suite
  if [ -f "$dest/package" ] && [ "$(cat "$dest/package")" = "$key" ] && [ -s "$dest/vmlinux" ] &&
    [ -s "$dest/modules/order" ]; then
    log "$suite: $key (cached)"
    continue
  fi
  log "$suite: downloading $key"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "$pkg=$ver" >&2) || { log "download of $pkg failed"; exit 1; }
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$tmp"/x/boot/vmlinuz-* "$dest/vmlinuz"
  python3 ci/extract-vmlinux.py "$dest/vmlinuz" "$dest/vmlinux"
  readelf -n "$dest/vmlinux" >"$dest/readelf-n.txt"
  # The PV frontends and their dependencies (modinfo's depends=), in load order.
  mdir=$(echo "$tmp"/x/lib/modules/*)
  mkdir -p "$dest/modules"
  : >"$dest/modules/order"
  add_module() {
    local name=$1 file base dep
    file=$(find "$mdir" -name "$name.ko*" -o -name "$(echo "$name" | tr _ -).ko*" | head -1)
    [ -n "$file" ] || { log "$suite: no module $name"; return 1; }
    base=$(basename "$file" | sed 's/\.\(xz\|zst\)$//')
    grep -qx "$base" "$dest/modules/order" && return 0
    case "$file" in
      *.xz) xz -dc "$file" >"$dest/modules/$base" ;;
      *.zst) zstd -qdc "$file" >"$dest/modules/$base" ;;
      *) cp "$file" "$dest/modules/$base" ;;
    esac
    # Dependencies first: the "depends=" string of the module's .modinfo.
    for dep in $(tr '\0' '\n' <"$dest/modules/$base" | sed -n 's/^depends=//p' | tr ',' ' '); do
      add_module "$dep" || return 1
    done
    echo "$base" >>"$dest/modules/order"
  }
  add_module xen-blkfront && add_module xen-netfront || exit 1
  if [ "$suite" = "$(echo $SUITES | cut -d' ' -f1)" ]; then
    log "$suite: re-packing in other formats (about 40 s)"
    v=$dest/variants
    mkdir -p "$v"
    size=$(stat -c %s "$dest/vmlinux")
    xz --check=crc32 --x86 --lzma2=preset=6,dict=32MiB -c "$dest/vmlinux" >"$tmp/p.xz"
    python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$tmp/p.xz" "$v/vmlinuz-xz" --size-trailer "$size"
    xz --format=lzma -6 -c "$dest/vmlinux" >"$tmp/p.lzma"
    python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$tmp/p.lzma" "$v/vmlinuz-lzma" --size-trailer "$size"
    zstd -q -19 --long=27 -c "$dest/vmlinux" >"$tmp/p.zst"
    python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$tmp/p.zst" "$v/vmlinuz-zstd" --size-trailer "$size"
    gzip -n -9 -c "$dest/vmlinux" >"$tmp/p.gz"
    python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$tmp/p.gz" "$v/vmlinuz-gzip"
    cp "$tmp/p.gz" "$v/vmlinux.gz"
  fi
  echo "$key" >"$dest/package"
  rm -rf "$tmp"
  log "$suite: $(basename "$dest")/vmlinuz $(stat -c %s "$dest/vmlinuz") bytes, vmlinux $(stat -c %s "$dest/vmlinux") bytes"
done
echo "$OUT"
