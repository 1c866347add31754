#!/bin/sh
# Enforce the layering in docs/ARCHITECTURE: a folder includes only lower layers, and the
# L2 folders (isolation, cgroups, netns) never include each other. checkpoint/ (L3) may
# include base/spec/isolation/cgroups/netns; runtime/ (L4) may include checkpoint/.
top=${1:-.}
rc=0
check() {  # folder, forbidden include prefixes...
  dir=$1; shift
  [ -d "$top/$dir" ] || return 0
  for bad in "$@"; do
    hits=$(grep -rn --include='*.h' --include='*.cc' "^#include \"$bad/" "$top/$dir" 2>/dev/null)
    if [ -n "$hits" ]; then
      echo "layering violation: $dir/ includes $bad/:"; echo "$hits"; rc=1
    fi
  done
}
check base spec isolation cgroups netns checkpoint runtime
check spec isolation cgroups netns checkpoint runtime
check isolation cgroups netns checkpoint runtime
check cgroups isolation netns checkpoint runtime
check netns isolation cgroups checkpoint runtime
check checkpoint runtime
[ $rc -eq 0 ] && echo "layering ok"
exit $rc
