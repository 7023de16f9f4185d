#pragma once
// config.json of a model directory: the format tag and the decoder's hyperparameters and files.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/encoder_config.h"

namespace caption {

struct DecoderConfig {
  int feature_dim = 0;  // required
  int embed_dim = 50;
  int hidden_dim = 256;
  int max_len = 40;  // tokens including <start> and <end>
  float dropout = 0.3f;
  std::string vocab = "vocab.txt";              // relative to the model directory
  std::string weights = "decoder.safetensors";  // relative to the model directory
};

struct ModelConfig {
  std::string format = "caption-model/1";
  bool has_decoder = true;  // a model dir from import-keras holds only an encoder
  DecoderConfig decoder;
  std::optional<EncoderConfig> encoder;
  nlohmann::json raw;  // the whole file, so that unknown keys survive a rewrite
};

// "format" must be "caption-model/1", and a "decoder" (with "feature_dim"; the other keys
// default as above) or an "encoder" object (model/encoder_config.h) or both be present. A missing required key or a wrong type or range is an InputError naming the
// key; unknown keys are kept in raw and otherwise ignored.
ModelConfig load_model_config(const std::string& path);

// Atomic, pretty-printed; writes the typed fields over raw, so unknown keys are kept.
void save_model_config(const std::string& path, const ModelConfig& cfg);

}  // namespace caption
