#include "model/model_dir.h"

#include <filesystem>

#include "model/safetensors.h"
#include "runtime/error.h"

namespace caption {

std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

ModelFiles load_model_dir(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) throw InputError(dir, "not a model directory");
  ModelFiles m;
  m.dir = dir;
  m.config = load_model_config(join_path(dir, "config.json"));
  if (m.config.has_decoder) {
    m.vocab = Vocabulary::load(join_path(dir, m.config.decoder.vocab));
    m.decoder_weights = read_safetensors(join_path(dir, m.config.decoder.weights)).tensors;
  }
  if (m.config.encoder) m.encoder_weights = read_safetensors(join_path(dir, m.config.encoder->weights)).tensors;
  return m;
}

void save_model_dir(const std::string& dir, const ModelConfig& config, const Vocabulary& vocab,
                    const std::map<std::string, Tensor>& decoder_weights) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(dir, "cannot create directory: " + ec.message());
  std::vector<std::pair<std::string, const Tensor*>> list;
  for (const auto& [name, t] : decoder_weights) list.emplace_back(name, &t);
  write_safetensors(join_path(dir, config.decoder.weights), list);
  vocab.save(join_path(dir, config.decoder.vocab));
  save_model_config(join_path(dir, "config.json"), config);
}

}  // namespace caption
