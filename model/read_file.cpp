#include "model/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/error.h"

namespace caption {

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  std::string problem;
  if (::fstat(fd, &st) != 0)
    problem = std::string("cannot read: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode))
    problem = S_ISDIR(st.st_mode) ? "is a directory, not a file" : "not a regular file";
  if (!problem.empty()) {
    ::close(fd);
    throw InputError(path, problem);
  }
  std::string bytes(size_t(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // an error, or the file shrank while we read it
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      throw InputError(path, std::string("cannot read: ") + std::strerror(err));
    }
    got += size_t(n);
  }
  ::close(fd);
  return bytes;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string at_line(size_t line_no, const std::string& problem) {
  return "line " + std::to_string(line_no) + ": " + problem;
}

}  // namespace caption
