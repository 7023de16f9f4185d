#pragma once
// Errors about what a user handed us (a file, a flag, a line). The message is one line that
// names the file and the problem; the CLI prints it and exits non-zero.
#include <stdexcept>
#include <string>

namespace caption {

class InputError : public std::runtime_error {
 public:
  InputError(const std::string& path, const std::string& problem)
      : std::runtime_error(path + ": " + problem) {}
};

}  // namespace caption
