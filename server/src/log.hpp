#pragma once

// Structured log lines in logfmt: `ts=... level=info msg="listening" addr=127.0.0.1:8000`.

#include <string>
#include <string_view>
#include <utility>

namespace deploynet::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_log_level(std::string_view name);
bool log_enabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view msg);
  LogLine& kv(std::string_view key, std::string_view value);
  LogLine& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  LogLine& kv(std::string_view key, char* value) { return kv(key, std::string_view(value)); }
  LogLine& kv(std::string_view key, const std::string& value) {
    return kv(key, std::string_view(value));
  }
  template <class T>
  LogLine& kv(std::string_view key, T value) {
    return kv(key, std::string_view(std::to_string(value)));
  }
  ~LogLine();  // writes the line

 private:
  std::string line_;
};

}  // namespace deploynet::server
