#pragma once
// Runs the built `caption` binary (CAPTION_BINARY) for the CLI tests and captures what it prints.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/io_test_util.h"

extern char** environ;

namespace caption::test {

// The bundled model and the demo images, for the commands' end-to-end tests.
inline const std::string kModel = std::string(CAPTION_SOURCE_DIR) + "/models/flickr8k-resnet50c4";
inline const std::string kExamples = std::string(CAPTION_SOURCE_DIR) + "/examples";
inline bool have_images() { return CAPTION_HAS_OPENCV && std::filesystem::exists(kExamples); }

struct CliRun {
  int status;          // exit status, -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

// With timeout_s > 0 the run is stopped after that long (timeout(1)), and its status is 124:
// a hang then fails the test instead of stalling the suite. Redirections in args apply to the
// command before its stderr joins the output: "... 2>/dev/null" drops the progress lines, which
// a run longer than 10 s prints (an ASan build on a slow machine).
inline CliRun run_cli(const std::string& args, int timeout_s = 0) {
  std::string cmd = "{ " + (timeout_s > 0 ? "timeout " + std::to_string(timeout_s) + " " : std::string()) +
                    std::string(CAPTION_BINARY) + " " + args + "; } 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// Starts `caption ARGS` in the background, its output discarded, with `env` ("NAME=value ...")
// added to the environment; exec makes the shell the process itself. Returns its pid, or -1.
inline pid_t spawn_cli(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " exec " + std::string(CAPTION_BINARY) + " " + args + " >/dev/null 2>&1";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid;
  return posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0 ? pid : -1;
}

// Starts `caption ARGS` (its output discarded), waits until ready() holds (2 minutes at the
// most), then kills it with SIGKILL. True when the kill is what ended it, i.e. the run was still
// going when ready() came true.
template <class Ready>
bool kill_cli_when(const std::string& args, Ready ready) {
  const pid_t pid = spawn_cli(args);
  if (pid < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

// `caption ARGS --resume` after a killed run of ARGS: it says it keeps `kept` of `total` inputs,
// and ends with `out` equal to `reference` (an uninterrupted run's) and no partial file.
inline void expect_resume_completes(const std::string& args, const std::string& out, size_t kept, size_t total,
                                    const std::string& reference) {
  const CliRun r = run_cli(args + " --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming: " + std::to_string(kept) + " of " + std::to_string(total)), std::string::npos)
      << r.output;
  EXPECT_EQ(read_bytes(out), read_bytes(reference));
  EXPECT_FALSE(std::filesystem::exists(out + ".partial"));
}

// Resident size (KB) of process pid now, or -1 when it has none (gone, or a zombie).
inline long rss_kb(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (!f) return -1;
  long kb = -1;
  char line[256];
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

// Runs `caption ARGS`, a job that builds `out` in "<out>.partial", to the end (output discarded,
// OpenBLAS and OpenMP on 2 threads), sampling its resident size every few milliseconds, and
// expects it to grow by less than 4 MB from when the partial file reaches start_bytes until
// `out` appears: how much the job grows while under way, which neither start-up (libraries,
// weights: the whole run's peak) nor the libraries' teardown at exit (15 MB more here) can mask.
// glibc's malloc runs with blocks of 64 KB and more mapped on their own and the heap trimmed at
// every free: by default it keeps what start-up freed and hands that out again, which hid even
// 8 MB held on purpose from the resident size.
inline void expect_flat_memory(const std::string& args, const std::string& out, uintmax_t start_bytes) {
  const pid_t pid =
      spawn_cli(args, "MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0 OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2");
  ASSERT_GT(pid, 0);
  long at_start = -1, peak = -1;
  int status = 0;
  bool finished = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (!finished) {
      const long now = rss_kb(pid);
      std::error_code ec;
      if (at_start < 0 && std::filesystem::file_size(out + ".partial", ec) >= start_bytes && !ec) at_start = now;
      finished = at_start >= 0 && std::filesystem::exists(out);
      if (at_start >= 0 && !finished) peak = std::max(peak, now);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << args;
  ASSERT_GT(at_start, 0) << "the job ended before its partial file reached " << start_bytes << " bytes";
  EXPECT_LT(peak - at_start, 4 * 1024) << "resident " << at_start << " KB when under way, up to " << peak
                                       << " KB after";
}

// One of the example JPEGs.
inline std::string example_image() {
  for (const auto& e : std::filesystem::directory_iterator(kExamples))
    if (e.path().extension() == ".jpg") return e.path().string();
  return "";
}

// The bundled model with its encoder reading 32x32 images, in dir/model: memory tests run
// thousands of images through it in seconds. Returns the model directory.
inline std::string small_image_model(const ScratchDir& dir) {
  std::filesystem::create_directory(dir.path("model"));
  for (const char* f : {"vocab.txt", "decoder.safetensors", "encoder.safetensors"})
    std::filesystem::create_symlink(kModel + "/" + f, dir.path("model/") + f);
  auto config = nlohmann::json::parse(read_bytes(kModel + "/config.json"));
  config["encoder"]["image_size"] = 32;
  write_bytes(dir.path("model/config.json"), config.dump());
  return dir.path("model");
}

// A failed run whose output is one line mentioning `mentions` (the file it names).
inline void expect_one_line_error(const CliRun& r, const std::string& mentions) {
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(mentions), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace caption::test
