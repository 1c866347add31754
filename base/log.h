// Logging for the runtime. Engines pass `--log FILE --log-format json` and parse
// runc-style lines {"level":"error","msg":"...","time":"..."}; people get text on stderr.
#pragma once

#include <string_view>

namespace zrun::base {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

struct LogConfig {
  int fd = 2;  // where log lines go; stderr unless --log
  LogFormat format = LogFormat::kText;
  LogLevel min_level = LogLevel::kWarn;
};

// Configure once at start-up (the CLI owns the fd it passes).
void log_configure(const LogConfig& cfg);
const LogConfig& log_config();

void log(LogLevel level, std::string_view msg);
inline void log_debug(std::string_view m) { log(LogLevel::kDebug, m); }
inline void log_info(std::string_view m) { log(LogLevel::kInfo, m); }
inline void log_warn(std::string_view m) { log(LogLevel::kWarn, m); }
inline void log_error(std::string_view m) { log(LogLevel::kError, m); }

// JSON string escaping (no allocation beyond the result).
std::string json_escape(std::string_view s);

}  // namespace zrun::base
