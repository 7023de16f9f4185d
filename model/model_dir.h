#pragma once
// A model is a directory: config.json, vocab.txt, decoder.safetensors, and encoder.safetensors
// when its config has an "encoder".
#include <map>
#include <string>

#include "model/model_config.h"
#include "model/vocabulary.h"
#include "runtime/tensor.h"

namespace caption {

struct ModelFiles {
  std::string dir;
  ModelConfig config;
  Vocabulary vocab;                               // with a decoder
  std::map<std::string, Tensor> decoder_weights;  // with a decoder
  std::map<std::string, Tensor> encoder_weights;  // with an encoder
};

// Reads the files the config names (shapes are checked by Decoder::load and ResNet50).
ModelFiles load_model_dir(const std::string& dir);
// Writes each file atomically; creates the directory if needed.
void save_model_dir(const std::string& dir, const ModelConfig& config, const Vocabulary& vocab,
                    const std::map<std::string, Tensor>& decoder_weights);

std::string join_path(const std::string& dir, const std::string& name);

}  // namespace caption
