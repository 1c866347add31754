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

}  // namespace zrun::base
