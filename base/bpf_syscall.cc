#include "base/bpf_syscall.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace zrun::base {

Result<long> bpf(int cmd, union bpf_attr& attr, std::string_view what) {
  long r;
  int tries = 0;
  do {
    r = ::syscall(SYS_bpf, cmd, &attr, sizeof(attr));
  } while (r < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < 5)));
  if (r < 0) return sys_error(std::string(what));
  return r;
}

bool bpf_program_exists(uint32_t id) {
  union bpf_attr a {};
  a.prog_id = id;
  auto fd = bpf(BPF_PROG_GET_FD_BY_ID, a, "open program");
  if (fd) ::close(static_cast<int>(*fd));
  return fd.ok();
}

}  // namespace zrun::base
