#!/usr/bin/env bash
# Fetch the test kernels from Debian's packages into the cache (outside the
# repo) and print the directory. Suites: COCOON_KERNEL_SUITES (default
# "bullseye bookworm trixie"); flavours: COCOON_KERNEL_FLAVOURS (default
# "cloud generic"): cloud is linux-image-cloud-amd64's kernel, into SUITE/,
# generic is linux-image-amd64's (what most operators run), into SUITE-generic/.
# For each it leaves:
#   DIR/vmlinuz       the bzImage as shipped
#   DIR/vmlinux       the decompressed ELF (extracted with the system's own
#                     lz4/xz/zstd tools, independently of Cocoon's decompressors)
#   DIR/readelf-n.txt `readelf -n vmlinux`, the reference for note parsing
#   DIR/package       the package file name (the cache key)
#   DIR/modules/      (cloud only) the PV block and network frontends
#                     (xen-blkfront, xen-netfront) and what they depend on,
#                     uncompressed, in load order (modules/order); the cloud
#                     kernels build them as modules
#   DIR/variants/     (bookworm cloud, else the first suite's cloud kernel) the
#                     same kernel re-packed by the system's own compressors:
#                     bzImages with xz (BCJ, as Linux's xz_wrap), lzma, zstd and
#                     gzip payloads, and a whole-file gzip ELF
# Package versions are resolved at run time (the meta-package's
# linux-image-X-FLAVOUR dependency, never -unsigned or -dbg); a newer version
# replaces an old one.
# Fails (non-zero) when a kernel cannot be fetched: tests never skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${COCOON_CACHE:-$HOME/.cache/cocoon}
OUT=$CACHE/kernels
SUITES=${COCOON_KERNEL_SUITES:-"bullseye bookworm trixie"}
FLAVOURS=${COCOON_KERNEL_FLAVOURS:-"cloud generic"}
# The suite whose cloud kernel is re-packed in every format (what the loader's
# tests read): bookworm when fetched, else the first suite.
case " $SUITES " in
  *" bookworm "*) VARIANTS_SUITE=bookworm ;;
  *) VARIANTS_SUITE=$(echo $SUITES | cut -d' ' -f1) ;;
esac
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

# The same kernel re-packed by the system's own compressors, in every format
# Linux can build (bzImages rewrapped with a valid CRC32); redone when the
# recipe changes.
VARIANTS_RECIPE="3: xz lzma zstd gzip bzip2 lzo, CRC32"
make_variants() {
  local suite=$1 dest=$2 v=$2/variants size t
  [ "$(cat "$v/recipe" 2>/dev/null)" = "$VARIANTS_RECIPE" ] && return 0
  log "$suite: re-packing in other formats (about 90 s)"
  rm -rf "$v" && mkdir -p "$v"
  t=$(mktemp -d)
  size=$(stat -c %s "$dest/vmlinux")
  xz --check=crc32 --x86 --lzma2=preset=6,dict=32MiB -c "$dest/vmlinux" >"$t/p.xz"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.xz" "$v/vmlinuz-xz" --size-trailer "$size"
  xz --format=lzma -6 -c "$dest/vmlinux" >"$t/p.lzma"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.lzma" "$v/vmlinuz-lzma" --size-trailer "$size"
  zstd -q -19 --long=27 -T2 -c "$dest/vmlinux" >"$t/p.zst"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.zst" "$v/vmlinuz-zstd" --size-trailer "$size"
  gzip -n -9 -c "$dest/vmlinux" >"$t/p.gz"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.gz" "$v/vmlinuz-gzip"
  cp "$t/p.gz" "$v/vmlinux.gz"
  bzip2 -9 -c "$dest/vmlinux" >"$t/p.bz2"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.bz2" "$v/vmlinuz-bzip2" --size-trailer "$size"
  lzop -9 -c "$dest/vmlinux" >"$t/p.lzo"
  python3 ci/rewrap-bzimage.py "$dest/vmlinuz" "$t/p.lzo" "$v/vmlinuz-lzo" --size-trailer "$size"
  rm -rf "$t"
  echo "$VARIANTS_RECIPE" >"$v/recipe"
}

# fetch_kernel SUITE FLAVOUR: one kernel into $OUT/SUITE (cloud) or
# $OUT/SUITE-generic (generic).
fetch_kernel() {
  local suite=$1 flavour=$2 meta pat pkg ver key dest tmp want_modules=0 mdir
  case $flavour in
    cloud) meta=linux-image-cloud-amd64 pat='linux-image-[0-9][^ ]*-cloud-amd64' dest=$OUT/$suite want_modules=1 ;;
    generic) meta=linux-image-amd64 pat='linux-image-[0-9][^ ]*-amd64' dest=$OUT/$suite-generic ;;
    *) log "unknown flavour $flavour (cloud, generic)"; return 1 ;;
  esac
  pkg=$(apt-cache "${APT_OPTS[@]}" depends "$meta" 2>/dev/null |
    sed -n "s/^ *Depends: \($pat\)\$/\1/p" | grep -v -e -unsigned -e -dbg | head -1)
  [ -n "$pkg" ] || { log "cannot resolve $meta in $suite"; return 1; }
  ver=$(apt-cache "${APT_OPTS[@]}" show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
  key="${pkg}_${ver}"
  if [ -f "$dest/package" ] && [ "$(cat "$dest/package")" = "$key" ] && [ -s "$dest/vmlinux" ] &&
    { [ $want_modules = 0 ] || [ -s "$dest/modules/order" ]; }; then
    log "$suite $flavour: $key (cached)"
    [ "$flavour" = cloud ] && [ "$suite" = "$VARIANTS_SUITE" ] && make_variants "$suite" "$dest"
    return 0
  fi
  log "$suite $flavour: downloading $key"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "$pkg=$ver" >&2) || { log "download of $pkg failed"; rm -rf "$tmp"; return 1; }
  mkdir -p "$tmp/x"
  if [ $want_modules = 1 ]; then
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  else
    # Only /boot: the generic package's modules are most of its size.
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*'
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$tmp"/x/boot/vmlinuz-* "$dest/vmlinuz"
  python3 ci/extract-vmlinux.py "$dest/vmlinuz" "$dest/vmlinux" || { rm -rf "$tmp"; return 1; }
  readelf -n "$dest/vmlinux" >"$dest/readelf-n.txt"
  if [ $want_modules = 1 ]; then
    # The PV frontends and their dependencies (modinfo's depends=), in load order.
    # /lib/modules, or /usr/lib/modules (trixie's merged /usr).
    mdir=$(find "$tmp/x/lib/modules" "$tmp/x/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1 || true)
    [ -n "$mdir" ] || { log "$suite: no modules directory in $pkg"; rm -rf "$tmp"; return 1; }
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
    add_module xen-blkfront && add_module xen-netfront || { rm -rf "$tmp"; return 1; }
  fi
  [ "$flavour" = cloud ] && [ "$suite" = "$VARIANTS_SUITE" ] && { make_variants "$suite" "$dest" || return 1; }
  echo "$key" >"$dest/package"
  rm -rf "$tmp"
  log "$suite $flavour: $(basename "$dest")/vmlinuz $(stat -c %s "$dest/vmlinuz") bytes, vmlinux $(stat -c %s "$dest/vmlinux") bytes"
}

for suite in $SUITES; do
  apt_for "$suite"
  dir=$CACHE/apt/$suite
  # Refresh the lists at most once a day.
  if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    log "updating package lists for $suite"
    apt-get "${APT_OPTS[@]}" update -qq >&2 || { log "apt-get update for $suite failed"; exit 1; }
  fi
  for flavour in $FLAVOURS; do
    fetch_kernel "$suite" "$flavour" # a failure ends the script (set -e)
  done
done
echo "$OUT"
