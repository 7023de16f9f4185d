#pragma once
// Progress reporting: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI).
#include <chrono>
#include <string>

namespace caption::cli {

class Progress {
 public:
  explicit Progress(bool terminal);
  static bool stderr_is_terminal();
  // `fraction` of the current unit done; `status` is the text after the bar.
  void update(double fraction, const std::string& status);
  void finish_line();  // ends a bar line before other output
  void line(const std::string& text);

 private:
  bool terminal_;
  bool open_ = false;
  std::chrono::steady_clock::time_point last_;
};

std::string format_duration(double seconds);

}  // namespace caption::cli
