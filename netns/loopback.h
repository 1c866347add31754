// Network-namespace basics the launcher needs: a new network namespace starts with `lo`
// down; containers expect 127.0.0.1 to work.
#pragma once

#include "base/result.h"

namespace zrun::net {

// Bring up `lo` in the current network namespace (SIOCSIFFLAGS IFF_UP).
base::Result<void> loopback_up();

}  // namespace zrun::net
