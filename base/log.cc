#include "base/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace zrun::base {

namespace {
LogConfig g_cfg;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string rfc3339_now() {
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  struct tm tm {};
  ::gmtime_r(&tv.tv_sec, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", static_cast<long>(tv.tv_usec));
  return buf;
}
}  // namespace

void log_configure(const LogConfig& cfg) { g_cfg = cfg; }
const LogConfig& log_config() { return g_cfg; }

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof(b), "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void log(LogLevel level, std::string_view msg) {
  if (level < g_cfg.min_level) return;
  std::string line;
  if (g_cfg.format == LogFormat::kJson) {
    line = "{\"level\":\"";
    line += level_name(level);
    line += "\",\"msg\":\"" + json_escape(msg) + "\",\"time\":\"" + rfc3339_now() + "\"}\n";
  } else if (g_cfg.fd == 2) {
    line = "zrun: ";
    if (level != LogLevel::kError) line += std::string(level_name(level)) + ": ";
    line += std::string(msg) + "\n";
  } else {
    line = rfc3339_now() + " " + level_name(level) + " " + std::string(msg) + "\n";
  }
  // One write(2) per line so concurrent writers (O_APPEND) never interleave.
  ssize_t r = ::write(g_cfg.fd, line.data(), line.size());
  (void)r;
}

}  // namespace zrun::base
