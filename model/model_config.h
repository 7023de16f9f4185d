#pragma once
// config.json of a model directory: the format tag and the decoder's hyperparameters and files.
#include <nlohmann/json.hpp>
#include <string>

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
  DecoderConfig decoder;
  nlohmann::json raw;  // the whole file, so that unknown keys (e.g. "encoder") survive a rewrite
};

// "format" must be "caption-model/1" and "decoder.feature_dim" present; the other decoder keys
// default as above. A missing required key or a wrong type or range is an InputError naming the
// key; unknown keys are kept in raw and otherwise ignored.
ModelConfig load_model_config(const std::string& path);

// Atomic, pretty-printed; writes the typed fields over raw, so unknown keys are kept.
void save_model_config(const std::string& path, const ModelConfig& cfg);

}  // namespace caption
