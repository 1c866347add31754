#include "netns/loopback.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "base/unique_fd.h"

namespace zrun::net {

base::Result<void> loopback_up() {
  base::UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return base::sys_error("bring up `lo`: socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return base::sys_error("bring up `lo`: get flags");
  if (ifr.ifr_flags & IFF_UP) return base::ok();
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) return base::sys_error("bring up `lo`");
  return base::ok();
}

}  // namespace zrun::net
