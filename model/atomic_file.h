#pragma once
// Crash-safe file replacement: readers of `path` see either the old file or the whole new one.
#include <string>
#include <string_view>

namespace caption {

// A file written in pieces that appears at `path` only when commit() succeeds: the bytes go
// to "<path>.tmp.<pid>" in the same folder; commit() fsyncs it, renames it over `path` and
// fsyncs the folder. Destroying an uncommitted AtomicFile removes the temporary, so a failed
// or abandoned job leaves no partial file. Errors are InputError(path, reason).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  void commit();
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void abandon(const char* step);
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole file in one call.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace caption
