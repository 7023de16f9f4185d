#pragma once
// The parsers under fuzzing, one entry per target: each reads the file at `path` and must either
// succeed or throw InputError. Shared by the libFuzzer targets (fuzz_<name>.cpp) and by the
// regression test that replays tests/data/fuzz/<name>/ (tests/test_fuzz_regressions.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "model/captions.h"
#include "model/glove.h"
#include "model/image_loader.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/vocabulary.h"
#include "runtime/error.h"

namespace caption::fuzz {

inline void parse_safetensors(const std::string& path) { read_safetensors(path); }
inline void parse_model_config(const std::string& path) { load_model_config(path); }
inline void parse_vocabulary(const std::string& path) { Vocabulary::load(path); }
inline void parse_captions(const std::string& path) { read_captions(path); }
inline void parse_glove(const std::string& path) { read_glove(path); }
inline void parse_image(const std::string& path) {
  // Small output and a pixel cap well under libFuzzer's 2 GB RSS limit keep runs fast; the
  // decoding and checks are those of the default options.
  ImageOptions opt;
  opt.image_size = 16;
  opt.max_pixels = 4'000'000;
  std::vector<uint8_t> out(size_t(opt.image_size) * opt.image_size * 3);
  for (ResizeMode mode : {ResizeMode::Squash, ResizeMode::CenterCrop}) {
    opt.resize = mode;
    load_image(path, opt, out.data());
  }
}

}  // namespace caption::fuzz
