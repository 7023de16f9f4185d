#pragma once
// Loads a model directory onto a backend and checks features against it.
#include <memory>
#include <string>

#include "model/decoder.h"
#include "model/features.h"
#include "model/model_dir.h"
#include "runtime/context.h"

namespace caption::cli {

struct LoadedModel {
  ModelFiles files;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Decoder> decoder;
};

LoadedModel load_model(const std::string& dir, Device device, size_t memory_limit_bytes = 0);
// InputError naming the features file when its dimension differs from the model's.
void check_features(const FeatureTable& features, const std::string& path, const LoadedModel& model);
// The rows of `images` in the table's order; InputError naming `list_path` if one is absent.
FeatureTable select_images(const FeatureTable& features, const std::vector<std::string>& images,
                           const std::string& list_path);

}  // namespace caption::cli
