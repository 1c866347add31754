# eBPF accounting (docs/accounting.md): cgroups/bpf/*.bpf.c compiled by clang -target bpf
# against a vmlinux.h dumped from the build host's BTF, linked/stripped by `bpftool gen
# object`, embedded as a libbpf skeleton (`bpftool gen skeleton`). Without clang, bpftool,
# libbpf or BTF the build still succeeds: accounting is compiled out and `zrun stats` says
# it is unavailable.
option(ZRUN_BPF "Build the eBPF accounting programs when the toolchain allows" ON)
set(ZRUN_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF the BPF programs are built against")

set(ZRUN_HAVE_BPF OFF)
if(ZRUN_BPF)
  find_program(ZRUN_CLANG NAMES clang clang-14)
  find_program(ZRUN_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
  pkg_check_modules(LIBBPF IMPORTED_TARGET libbpf>=1.0)
  set(why "")
  if(NOT ZRUN_CLANG)
    set(why "clang not found")
  elseif(NOT ZRUN_BPFTOOL)
    set(why "bpftool not found")
  elseif(NOT LIBBPF_FOUND)
    set(why "libbpf >= 1.0 not found (libbpf-dev)")
  elseif(NOT EXISTS "${ZRUN_BTF}")
    set(why "no kernel BTF at ${ZRUN_BTF}")
  endif()
  if(ZRUN_STATIC AND NOT ZRUN_SANITIZE AND why STREQUAL "")
    find_library(BPF_ARCHIVE libbpf.a)
    find_library(ELF_ARCHIVE libelf.a)
    find_library(Z_ARCHIVE libz.a)
    if(NOT BPF_ARCHIVE OR NOT ELF_ARCHIVE OR NOT Z_ARCHIVE)
      set(why "static libbpf.a/libelf.a/libz.a not found (libbpf-dev, libelf-dev, zlib1g-dev)")
    endif()
  endif()
  if(why STREQUAL "")
    set(ZRUN_HAVE_BPF ON)
  else()
    message(WARNING "eBPF accounting compiled out: ${why}")
  endif()
endif()

if(ZRUN_HAVE_BPF)
  set(bpf_out ${CMAKE_BINARY_DIR}/bpf)
  file(MAKE_DIRECTORY ${bpf_out})
  set(bpf_src ${CMAKE_SOURCE_DIR}/cgroups/bpf/accounting.bpf.c)
  add_custom_command(
    OUTPUT ${bpf_out}/vmlinux.h
    COMMAND ${ZRUN_BPFTOOL} btf dump file ${ZRUN_BTF} format c > ${bpf_out}/vmlinux.h
    DEPENDS ${ZRUN_BTF}
    COMMENT "Generating vmlinux.h from ${ZRUN_BTF}")
  add_custom_command(
    OUTPUT ${bpf_out}/accounting.bpf.o
    COMMAND ${ZRUN_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86
            -I${bpf_out} -I${CMAKE_SOURCE_DIR}/cgroups/bpf -I${LIBBPF_INCLUDEDIR}
            -c ${bpf_src} -o ${bpf_out}/accounting.tmp.o
    # Static link: drops the DWARF (the object shrinks from ~700 KB to ~55 KB), keeps BTF.
    COMMAND ${ZRUN_BPFTOOL} gen object ${bpf_out}/accounting.bpf.o ${bpf_out}/accounting.tmp.o
    DEPENDS ${bpf_src} ${CMAKE_SOURCE_DIR}/cgroups/bpf/accounting_shared.h ${bpf_out}/vmlinux.h
    COMMENT "Compiling BPF accounting.bpf.c")
  add_custom_command(
    OUTPUT ${bpf_out}/accounting.skel.h
    COMMAND ${ZRUN_BPFTOOL} gen skeleton ${bpf_out}/accounting.bpf.o name accounting
            > ${bpf_out}/accounting.skel.h
    DEPENDS ${bpf_out}/accounting.bpf.o
    COMMENT "Generating the accounting BPF skeleton")
  # The CO-RE relocations against the whole kernel BTF cost ~25 ms per load (libbpf parses
  # ~6 MB and indexes it); a BTF reduced to the types the programs touch (~600 bytes) makes
  # them cheap — paid by the first container of a state root. Only valid on the kernel it
  # came from: the loader compares /proc/version and falls back to the kernel's BTF
  # otherwise. The kernel type ids the programs cast pointers to (bpf_rdonly_cast) come
  # with it: a CO-RE type-id relocation against the reduced BTF would give its own ids.
  if(ZRUN_BTF STREQUAL "/sys/kernel/btf/vmlinux")
    add_custom_command(
      OUTPUT ${bpf_out}/accounting_min_btf.h
      COMMAND ${ZRUN_BPFTOOL} gen min_core_btf ${ZRUN_BTF} ${bpf_out}/accounting.min.btf
              ${bpf_out}/accounting.bpf.o
      COMMAND sh ${CMAKE_SOURCE_DIR}/cmake/btf_ids.sh ${ZRUN_BPFTOOL} ${ZRUN_BTF}
              ${bpf_out}/btf_ids.txt
      COMMAND ${CMAKE_COMMAND} -DIN=${bpf_out}/accounting.min.btf -DIDS=${bpf_out}/btf_ids.txt
              -DOUT=${bpf_out}/accounting_min_btf.h -P ${CMAKE_SOURCE_DIR}/cmake/embed_btf.cmake
      DEPENDS ${bpf_out}/accounting.bpf.o ${CMAKE_SOURCE_DIR}/cmake/embed_btf.cmake
              ${CMAKE_SOURCE_DIR}/cmake/btf_ids.sh
      COMMENT "Minimizing the kernel BTF for the accounting programs")
    set(min_btf ${bpf_out}/accounting_min_btf.h)
    target_compile_definitions(zrun_cg PRIVATE ZRUN_HAVE_MIN_BTF=1)
  endif()
  add_custom_target(zrun_bpf_skel DEPENDS ${bpf_out}/accounting.skel.h ${min_btf})
  add_dependencies(zrun_cg zrun_bpf_skel)
  target_include_directories(zrun_cg PRIVATE ${bpf_out})
  target_compile_definitions(zrun_cg PRIVATE ZRUN_HAVE_BPF=1)
  if(ZRUN_STATIC AND NOT ZRUN_SANITIZE)
    # libbpf needs libelf, libelf needs zlib; Debian's libelf.a is built without zstd.
    target_link_libraries(zrun_cg PRIVATE ${BPF_ARCHIVE} ${ELF_ARCHIVE} ${Z_ARCHIVE})
  else()
    target_link_libraries(zrun_cg PRIVATE PkgConfig::LIBBPF)
  endif()
endif()
