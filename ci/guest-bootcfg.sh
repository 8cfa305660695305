#!/usr/bin/env bash
# Write the bootloader configuration a Debian guest's tools would for the
# kernels in ROOT/boot (vmlinuz-VERSION with initrd.img-VERSION), newest first.
#
#   ci/guest-bootcfg.sh ROOT CONFIG FS_UUID
#     grub2    ROOT/boot/grub/grub.cfg from Debian's grub-mkconfig (ci/grub-mkconfig.sh; root)
#     legacy   ROOT/boot/grub/menu.lst as Debian's grub-legacy update-grub wrote it
#     extlinux ROOT/boot/extlinux/extlinux.conf
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { echo "usage: $0 ROOT grub2|legacy|extlinux FS_UUID" >&2; exit 2; }
root=$1 config=$2 uuid=$3
mapfile -t versions < <(cd "$root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -rV)
[ ${#versions[@]} -gt 0 ] || { echo "no $root/boot/vmlinuz-*" >&2; exit 1; }
case "$config" in
  grub2)
    bash ci/grub-mkconfig.sh "$root" "$uuid" >"$root/boot/grub.cfg.new"
    mkdir -p "$root/boot/grub"
    mv "$root/boot/grub.cfg.new" "$root/boot/grub/grub.cfg"
    ;;
  legacy)
    mkdir -p "$root/boot/grub"
    {
      printf '# menu.lst - See: grub(8), info grub, update-grub(8)\n#            grub-install(8), grub-floppy(8),\n#            grub-md5-crypt, /usr/share/doc/grub\n#            and /usr/share/doc/grub-legacy-doc/.\n\n'
      printf '## default num\ndefault\t\t0\n\n## timeout sec\ntimeout\t\t5\n\n### BEGIN AUTOMAGIC KERNELS LIST\n'
      printf '## ## Start Default Options ##\n# kopt=root=UUID=%s ro\n# groot=(hd0,0)\n## ## End Default Options ##\n\n' "$uuid"
      for v in "${versions[@]}"; do
        printf 'title\t\tDebian GNU/Linux, kernel %s\nroot\t\t(hd0,0)\nkernel\t\t/boot/vmlinuz-%s root=UUID=%s ro \ninitrd\t\t/boot/initrd.img-%s\n\n' "$v" "$v" "$uuid" "$v"
      done
      printf '### END DEBIAN AUTOMAGIC KERNELS LIST\n'
    } >"$root/boot/grub/menu.lst"
    ;;
  extlinux)
    mkdir -p "$root/boot/extlinux"
    {
      printf '## /boot/extlinux/extlinux.conf\n\ndefault l0\nprompt 0\ntimeout 50\n\n'
      i=0
      for v in "${versions[@]}"; do
        printf 'label l%d\n\tmenu label Debian GNU/Linux, kernel %s\n\tlinux /boot/vmlinuz-%s\n\tappend initrd=/boot/initrd.img-%s root=UUID=%s ro\n\n' "$i" "$v" "$v" "$v" "$uuid"
        i=$((i + 1))
      done
    } >"$root/boot/extlinux/extlinux.conf"
    ;;
  *) echo "unknown CONFIG $config" >&2; exit 2 ;;
esac
