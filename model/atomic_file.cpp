#include "model/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "model/read_file.h"
#include "runtime/error.h"

namespace caption {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& step, int err) {
  throw InputError(path, step + ": " + std::strerror(err));
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Syncs the folder holding `path`: a file created or renamed there is durable only once the
// folder entry is on disk. Errors name `reported`.
void sync_folder(const std::string& path, const std::string& reported) {
  int dir = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) fail(reported, "cannot open folder to sync", errno);
  int rc = ::fsync(dir);
  int err = errno;
  ::close(dir);
  if (rc != 0 && err != EINVAL) fail(reported, "cannot sync folder", err);  // EINVAL: fs can't sync dirs
}

// Renames `from` over `to` (removing `from` if that fails) and syncs the folder.
void rename_durably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    ::unlink(from.c_str());
    fail(to, "cannot replace file", err);
  }
  sync_folder(to, to);
}

void write_all(int fd, std::string_view bytes, const std::function<void()>& on_error) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) on_error();
    done += size_t(n);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail(path_, "cannot create temporary file", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(tmp_.c_str());
}

void AtomicFile::abandon(const char* step) {
  int err = errno;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  fail(path_, step, err);
}

void AtomicFile::write(std::string_view bytes) {
  if (fd_ < 0) throw std::logic_error("AtomicFile::write after commit or failure: " + path_);
  write_all(fd_, bytes, [&] { abandon("cannot write"); });
}

void AtomicFile::commit() {
  if (fd_ < 0) throw std::logic_error("AtomicFile::commit twice or after failure: " + path_);
  if (::fsync(fd_) != 0) abandon("cannot sync");
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    fail(path_, "cannot write", err);
  }
  rename_durably(tmp_, path_);
}

PartialFile::PartialFile(std::string path, bool resume) : path_(std::move(path)), partial_(path_ + ".partial") {
  const bool keep = resume && ::access(partial_.c_str(), F_OK) == 0;
  if (keep) {
    kept_ = read_file(partial_);
    kept_.resize(kept_.rfind('\n') + 1);  // npos + 1 == 0: no complete line
  }
  // Resuming cuts the file to the kept lines in place: truncating and rewriting them would
  // lose them to a kill in between.
  fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (keep ? 0 : O_TRUNC), 0666);
  if (fd_ < 0) fail(path_, "cannot create " + partial_, errno);
  if (keep && (::ftruncate(fd_, off_t(kept_.size())) != 0 || ::lseek(fd_, 0, SEEK_END) < 0)) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail(path_, "cannot resume " + partial_, err);
  }
  empty_ = kept_.empty();
  // Its rows are synced batch by batch; its folder entry once, so that those rows have a name
  // after a power cut too.
  try {
    sync_folder(partial_, path_);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    if (empty_) ::unlink(partial_.c_str());
    throw;
  }
}

PartialFile::~PartialFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  if (empty_) ::unlink(partial_.c_str());
}

void PartialFile::keep_only(size_t bytes) {
  if (::ftruncate(fd_, off_t(bytes)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0) {
    const int err = errno;
    fail(path_, "cannot resume " + partial_, err);
  }
  empty_ = bytes == 0;
}

void PartialFile::append(std::string_view bytes) {
  if (fd_ < 0) throw std::logic_error("PartialFile::append after commit: " + path_);
  if (bytes.empty()) return;
  write_all(fd_, bytes, [&] {
    const int err = errno;
    fail(path_, "cannot write " + partial_, err);
  });
  empty_ = false;
}

void PartialFile::sync() {
  if (::fdatasync(fd_) != 0) {
    const int err = errno;
    fail(path_, "cannot sync " + partial_, err);
  }
}

void PartialFile::commit() {
  sync();
  const int rc = ::close(fd_), err = errno;
  fd_ = -1;
  if (rc != 0) fail(path_, "cannot write " + partial_, err);
  rename_durably(partial_, path_);
}

void PartialFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (::unlink(partial_.c_str()) != 0 && errno != ENOENT) fail(path_, "cannot remove " + partial_, errno);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace caption
