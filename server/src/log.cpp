#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace deploynet::server {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" =\"\\") != std::string_view::npos;
  if (quote) out.push_back('"');
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      out.push_back('?');  // client data never injects line breaks into the log
    } else {
      out.push_back(c);
    }
  }
  if (quote) out.push_back('"');
}
}  // namespace

void set_log_level(std::string_view name) {
  LogLevel l = LogLevel::kInfo;
  if (name == "debug") l = LogLevel::kDebug;
  if (name == "warn") l = LogLevel::kWarn;
  if (name == "error") l = LogLevel::kError;
  g_level.store(static_cast<int>(l));
}

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

LogLine::LogLine(LogLevel level, std::string_view msg) {
  if (!log_enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  line_.reserve(160);
  line_ += "ts=";
  line_ += ts;
  line_ += " level=";
  line_ += level_name(level);
  line_ += " msg=";
  append_value(line_, msg);
}

LogLine& LogLine::kv(std::string_view key, std::string_view value) {
  if (line_.empty()) return *this;
  line_.push_back(' ');
  line_ += key;
  line_.push_back('=');
  append_value(line_, value);
  return *this;
}

LogLine::~LogLine() {
  if (line_.empty()) return;
  line_.push_back('\n');
  std::fwrite(line_.data(), 1, line_.size(), stderr);
}

}  // namespace deploynet::server
