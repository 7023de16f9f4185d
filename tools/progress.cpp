#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace caption::cli {

Progress::Progress(bool terminal) : terminal_(terminal), last_(std::chrono::steady_clock::now()) {}

bool Progress::stderr_is_terminal() { return isatty(fileno(stderr)); }

void Progress::update(double fraction, const std::string& status) {
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (terminal_) {
    if (since < 0.1 && fraction < 1.0) return;
    const int width = 30;
    int filled = int(fraction * width + 0.5);
    std::fprintf(stderr, "\r[%s%s] %3d%% %s\033[K", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), int(fraction * 100 + 0.5), status.c_str());
    open_ = true;
  } else {
    if (since < 10.0) return;  // a line every 10 s keeps logs readable
    std::fprintf(stderr, "%3d%% %s\n", int(fraction * 100 + 0.5), status.c_str());
  }
  std::fflush(stderr);
  last_ = now;
}

void Progress::finish_line() {
  if (open_) std::fputc('\n', stderr);
  open_ = false;
}

void Progress::line(const std::string& text) {
  finish_line();
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

std::string format_duration(double s) {
  char buf[32];
  int t = int(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  return buf;
}

std::string rate_status(size_t done, size_t total, const std::string& unit, std::chrono::steady_clock::time_point start) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = done / std::max(s, 1e-9);
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu/%zu %s, %.1f %s/s, ETA %s", done, total, unit.c_str(), rate, unit.c_str(),
                format_duration((total - done) / std::max(rate, 1e-9)).c_str());
  return buf;
}

std::vector<std::string> resume_todo(const std::vector<std::string>& inputs,
                                     const std::function<bool(const std::string&)>& done, const std::string& did,
                                     Progress& progress) {
  std::vector<std::string> todo;
  for (const auto& in : inputs)
    if (!done(in)) todo.push_back(in);
  if (todo.size() < inputs.size())
    progress.line("resuming: " + std::to_string(inputs.size() - todo.size()) + " of " + std::to_string(inputs.size()) +
                  " already " + did + " in the partial output");
  return todo;
}

}  // namespace caption::cli
