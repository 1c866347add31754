#include "base/result.h"

#include <cstring>

namespace zrun::base {

std::string Error::text() const {
  if (err == 0) return msg;
  return msg + ": " + std::strerror(err);
}

Error make_error(std::string msg) { return Error{std::move(msg), 0}; }

Error sys_error(std::string msg, int err) { return Error{std::move(msg), err}; }

}  // namespace zrun::base
