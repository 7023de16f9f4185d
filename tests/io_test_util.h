#pragma once
// Helpers for the model I/O tests: a scratch folder per test, whole-file reads and writes, and
// a check that a call fails with a one-line InputError mentioning given words.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace caption::test {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "caption_io_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The lines of a text, without their newlines.
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Passes when two byte strings (whole files, say) are equal; otherwise says where they first
// differ instead of printing both, which for a checkpoint is megabytes of binary.
inline ::testing::AssertionResult same_bytes(const std::string& a, const std::string& b) {
  if (a == b) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " bytes, first difference at byte " << i;
}

// Passes when fn throws an InputError whose message is one line containing every word.
inline ::testing::AssertionResult throws_input_error(const std::function<void()>& fn,
                                                     const std::vector<std::string>& words) {
  try {
    fn();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "multi-line message: " << msg;
    for (const auto& w : words)
      if (msg.find(w) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks '" << w << "': " << msg;
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-InputError: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// The shared data folder: ../shared beside the checkout, or $CAPTION_SHARED_DIR (the GPU
// machine gets the few files its tests need carried there, see scripts/gpu-carry.sh).
inline std::string shared_dir() {
  const char* env = std::getenv("CAPTION_SHARED_DIR");
  return env && *env ? std::string(env) : std::string(CAPTION_SHARED_DIR);
}

// A file or folder under the shared data folder, or "" when there is none (tests then GTEST_SKIP).
inline std::string shared_data(const std::string& rel) {
  std::string p = shared_dir() + "/data/" + rel;
  return std::filesystem::exists(p) ? p : std::string();
}

}  // namespace caption::test
