// Replays tests/data/fuzz/<target>/ (fuzzing seeds and the inputs of past findings) through the
// same parsers as the libFuzzer targets (tests/fuzz/): each file must parse or be an InputError.
// Anything else (another exception, a sanitizer report in the ASan build) fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "fuzz/fuzz_parsers.h"

namespace caption {
namespace {

namespace fs = std::filesystem;

struct FuzzTarget {
  const char* name;
  std::function<void(const std::string&)> parse;
};

void replay(const FuzzTarget& t) {
  fs::path dir = fs::path(CAPTION_TEST_DATA) / "fuzz" / t.name;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << dir;  // at least the seeds
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    try {
      t.parse(f.string());
    } catch (const InputError&) {
    }
  }
}

TEST(FuzzRegressions, Safetensors) { replay({"safetensors", fuzz::parse_safetensors}); }
TEST(FuzzRegressions, ModelConfig) { replay({"model_config", fuzz::parse_model_config}); }
TEST(FuzzRegressions, Vocabulary) { replay({"vocabulary", fuzz::parse_vocabulary}); }
TEST(FuzzRegressions, Captions) { replay({"captions", fuzz::parse_captions}); }
TEST(FuzzRegressions, Glove) { replay({"glove", fuzz::parse_glove}); }
TEST(FuzzRegressions, Image) {
  if (!image_support_available()) GTEST_SKIP() << "built without OpenCV";
  replay({"image", fuzz::parse_image});
}

}  // namespace
}  // namespace caption
