#!/usr/bin/env bash
# tests/vm/run.sh ZRUN PROBE — the cgroup v2 cases in a qemu guest (see tests/vm/README.md).
#
# Builds an initramfs (busybox-static, ZRUN, the static PROBE, a container rootfs, one
# bundle per case and the guest scripts), boots Debian's 6.12 kernel under TCG with a
# small virtio disk for io.max, and relays the guest's `PASS`/`FAIL` lines and its
# `vm: N passed, M failed` summary.
# Exit 0: the summary arrived with M = 0; 1: a case failed, or no summary (timeout, panic);
# 77: cannot run here (no qemu, no kernel package), with the reason on stderr.
#
# Environment: ZRUN_VM_CACHE (kernel cache, default ~/.cache/zrun-vm), ZRUN_VM_KERNEL
# (a Debian kernel ABI other than 6.12.100+deb12-amd64), ZRUN_VM_TIMEOUT
# (seconds for the whole guest run, default 420), ZRUN_VM_CASES=a,b (only these cases),
# ZRUN_VM_KEEP=1 (keep the work dir),
# BUSYBOX (default /bin/busybox, must be static).
set -euo pipefail

KVER=${ZRUN_VM_KERNEL:-6.12.100+deb12-amd64}
KPKG=linux-image-$KVER

skip() {
  echo "vm: skipped: $*" >&2
  exit 77
}
die() {
  echo "vm: $*" >&2
  exit 1
}

[ $# = 2 ] || die "usage: run.sh ZRUN PROBE"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
zrun=$(realpath "$1")
probe=$(realpath "$2")
busybox=${BUSYBOX:-/bin/busybox}
cache=${ZRUN_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zrun-vm}
timeout_s=${ZRUN_VM_TIMEOUT:-420}

[ -x "$zrun" ] || die "no zrun binary at $1"
[ -x "$probe" ] || die "no zrun-probe at $2"
command -v qemu-system-x86_64 >/dev/null ||
  skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
command -v python3 >/dev/null || skip "python3 is not installed (needed to write the bundles)"
[ -x "$busybox" ] || skip "no busybox at $busybox (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && skip "$busybox is not static (apt-get install busybox-static)"
ldd "$probe" >/dev/null 2>&1 && die "$probe is not static"

# ---- the kernel (downloaded once into the cache) ----
# fetch_kernel VERSION: linux-image-VERSION into $cache/VERSION (vmlinuz, config,
# virtio_blk.ko); non-zero if apt-get cannot download it.
fetch_kernel() {
  local kver=$1 tmp ok=1
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/fetch.XXXXXX")
  if (cd "$tmp" && apt-get download "linux-image-$kver" >/dev/null 2>&1) &&
    dpkg-deb -x "$tmp"/linux-image-"$kver"_*.deb "$tmp/x" && mkdir -p "$tmp/k" &&
    cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/k/vmlinuz" &&
    cp "$tmp/x/boot/config-$kver" "$tmp/k/config" &&
    # CONFIG_VIRTIO_BLK=m: the guest loads it from the initramfs (xz-compressed in Debian).
    "$busybox" xz -dc "$tmp/x/lib/modules/$kver/kernel/drivers/block/virtio_blk.ko.xz" \
      >"$tmp/k/virtio_blk.ko"; then
    rm -rf "${cache:?}/$kver"
    mv "$tmp/k" "$cache/$kver" && ok=0
  fi
  rm -rf "$tmp"
  return $ok
}
cached() { [ -f "$cache/$1/vmlinuz" ] && [ -f "$cache/$1/virtio_blk.ko" ]; }
if ! cached "$KVER" && ! fetch_kernel "$KVER"; then
  # An old package list may not know it: refresh once. If the archive has dropped this
  # ABI, take the one Debian's 6.12 meta-package points at now.
  apt-get update -qq >/dev/null 2>&1 || true
  if ! fetch_kernel "$KVER"; then
    now=$(apt-cache depends linux-image-6.12-amd64 2>/dev/null |
      sed -n 's/.*Depends: linux-image-\(6\.12\.[^ ]*-amd64\)$/\1/p' | head -n 1)
    [ -n "$now" ] && fetch_kernel "$now" ||
      skip "cannot download $KPKG (nor the current 6.12 kernel) with apt-get"
    echo "vm: $KPKG is gone from the archive; using linux-image-$now" >&2
    KVER=$now
  fi
fi
kdir=$cache/$KVER

# The uncompressed vmlinux boots via PVH, skipping the decompressor (~2x faster under TCG).
# Debian's bzImage carries a zstd payload (CONFIG_KERNEL_ZSTD): decompress from its magic,
# like scripts/extract-vmlinux; zstd stops at the payload's end and complains about the
# trailer, so the result is checked for the ELF magic instead of the exit code.
extract_vmlinux() {
  command -v zstd >/dev/null || return 1
  local off
  off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$kdir/vmlinuz" | head -n 1 | cut -d: -f1)
  [ -n "$off" ] || return 1
  local tmp=$kdir/vmlinux.$$
  tail -c +$((off + 1)) "$kdir/vmlinuz" | zstd -dcq >"$tmp" 2>/dev/null || true
  [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || {
    rm -f "$tmp"
    return 1
  }
  mv "$tmp" "$kdir/vmlinux"
}
kernel=$kdir/vmlinuz
if [ -f "$kdir/vmlinux" ] || extract_vmlinux; then kernel=$kdir/vmlinux; fi

# ---- the initramfs ----
work=$(mktemp -d "${TMPDIR:-/tmp}/zrun-vm.XXXXXX")
if [ "${ZRUN_VM_KEEP:-0}" = 1 ]; then
  echo "vm: work dir $work (kept)"
else
  trap 'rm -rf "$work"' EXIT
fi
ir=$work/initramfs
mkdir -p "$ir"/{bin,lib/modules,etc,vm/cases}
cp "$busybox" "$ir/bin/busybox"
for a in $("$busybox" --list); do
  [ "$a" = busybox ] || ln -s busybox "$ir/bin/$a"
done
# Debug info would make the initramfs several times larger (and slower to unpack under TCG).
strip --strip-debug -o "$ir/bin/zrun" "$zrun" 2>/dev/null || cp "$zrun" "$ir/bin/zrun"
cp "$probe" "$ir/bin/zrun-probe"
# A dynamically linked zrun (a non-default build) needs its libraries in the guest.
if ldd "$zrun" >/dev/null 2>&1; then
  for lib in $(ldd "$zrun" | grep -o '/[^ ]*'); do
    mkdir -p "$ir$(dirname "$lib")"
    cp -L "$lib" "$ir$lib"
  done
fi
cp "$kdir/virtio_blk.ko" "$ir/lib/modules/"
install -m 0755 "$here/init" "$ir/init"
install -m 0755 "$here/guest.sh" "$ir/vm/guest.sh"
BUSYBOX=$busybox sh "$repo/tests/fixtures/make_rootfs.sh" "$ir/vm/rootfs" "$probe"
mkdir -p "$work/spec"
"$zrun" spec -b "$work/spec"
python3 "$here/configs.py" "$work/spec/config.json" "$ir/vm/cases"
(cd "$ir" && find . | "$busybox" cpio -o -H newc 2>/dev/null) >"$work/initramfs.cpio"
# The io.max case writes to the first disk (its contents do not matter); the swap case
# swaps to the second.
truncate -s 64M "$work/disk.img"
truncate -s 64M "$work/swap.img"

# ---- boot ----
# TCG, not KVM: KVM on our build machines hangs with a stock kernel (KERNEL-NOTES.md).
echo "vm: booting $(basename "$kernel") $KVER under TCG (timeout ${timeout_s}s); this takes about a minute"
start=$SECONDS
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
  -accel "${ZRUN_VM_ACCEL:-tcg}" -cpu max -smp 1 -m 1024 \
  -display none -monitor none -serial stdio -net none -no-reboot \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 rdinit=/init quiet panic=-1${ZRUN_VM_CASES:+ zrun.cases=$ZRUN_VM_CASES}" \
  -drive "file=$work/disk.img,if=virtio,format=raw" \
  -drive "file=$work/swap.img,if=virtio,format=raw" </dev/null 2>&1 |
  tr -d '\r' | tee "$work/console.log" | grep --line-buffered -E '^(guest:|PASS |FAIL |vm: |  )'
qemu_rc=${PIPESTATUS[0]}
set -e
echo "vm: guest ran $((SECONDS - start)) s"

summary=$(grep -E '^vm: [0-9]+ passed, [0-9]+ failed$' "$work/console.log" | tail -n 1 || true)
if [ -z "$summary" ]; then
  echo "vm: no summary line from the guest (qemu exit $qemu_rc$([ "$qemu_rc" = 124 ] &&
    echo ", timed out after ${timeout_s}s")); console tail:" >&2
  tail -n 40 "$work/console.log" >&2
  exit 1
fi
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed$/\1/')
[ "$failed" = 0 ] || exit 1
exit 0
