#pragma once
// Progress reporting: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI).
#include <chrono>
#include <functional>
#include <string>
#include <vector>

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
// The inputs a resumed job still has to do: those `done` does not claim, in order (it is asked
// once per input, in order). When some were done, a line says how many: "resuming: 2 of 6
// already <did> in the partial output".
std::vector<std::string> resume_todo(const std::vector<std::string>& inputs,
                                     const std::function<bool(const std::string&)>& done, const std::string& did,
                                     Progress& progress);
// "120/5000 images, 35.2 images/s, ETA 2m19s" for `done` of `total` since `start`.
std::string rate_status(size_t done, size_t total, const std::string& unit, std::chrono::steady_clock::time_point start);

}  // namespace caption::cli
