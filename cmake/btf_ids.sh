#!/bin/sh
# btf_ids.sh BPFTOOL BTF OUT: the type ids of the structs the accounting programs cast
# pointers to (bpf_rdonly_cast), one "[ID] STRUCT 'name' ..." line each, and of the kfunc
# bpf_rdonly_cast itself ("[ID] FUNC 'bpf_rdonly_cast' ..."), for the loader to use with the
# minimized BTF (cmake/embed_btf.cmake): ids of the kernel the BTF came from.
set -eu
"$1" btf dump file "$2" |
  grep -E "^\[[0-9]+\] (STRUCT '(task_struct|sock|bio)'|FUNC 'bpf_rdonly_cast') " > "$3"
