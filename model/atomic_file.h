#pragma once
// Crash-safe file replacement: readers of `path` see either the old file or the whole new one.
#include <string>
#include <string_view>
#include <utility>

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

 private:
  [[noreturn]] void abandon(const char* step);
  std::string path_, tmp_;
  int fd_ = -1;
};

// A file built up over a long job: appended to "<path>.partial" and synced at every sync(),
// renamed to `path` by commit(). Unlike an AtomicFile the partial file outlives a job that
// fails or is killed once it holds something, so that a rerun can resume from it; a job that
// wrote nothing leaves nothing. Errors are InputError(path, reason).
class PartialFile {
 public:
  // resume: keep what an earlier run left in "<path>.partial", up to its last complete line
  // (a kill may cut the last one); otherwise start empty.
  PartialFile(std::string path, bool resume);
  ~PartialFile();
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  // The lines kept from the earlier run, handed over once: a caller parses them and
  // the file does not hold them for the rest of a long job (a features job's are rows).
  std::string take_kept() { return std::exchange(kept_, {}); }
  // Cuts what was kept to its first `bytes` (whole lines of it), for a caller that keeps fewer
  // lines than the earlier run left; appending goes on from there.
  void keep_only(size_t bytes);
  bool empty() const { return empty_; }
  void append(std::string_view bytes);
  void sync();
  void commit();
  // For a job whose result is written elsewhere (in another format, atomically): once it is,
  // this closes and removes the partial file.
  void discard();

 private:
  std::string path_, partial_, kept_;
  int fd_ = -1;
  bool empty_ = true;
};

// The whole file in one call.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace caption
