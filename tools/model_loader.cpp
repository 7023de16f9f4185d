#include "tools/model_loader.h"

#include "runtime/error.h"

namespace caption::cli {

LoadedModel load_model(const std::string& dir, Device device, size_t memory_limit_bytes) {
  LoadedModel m;
  m.files = load_model_dir(dir);
  if (!m.files.config.has_decoder) throw InputError(join_path(dir, "config.json"), "the model has no decoder");
  const auto& d = m.files.config.decoder;
  m.ctx = std::make_unique<Context>(device, memory_limit_bytes);
  m.decoder = std::make_unique<Decoder>(*m.ctx, DecoderDims{d.feature_dim, d.embed_dim, d.hidden_dim, m.files.vocab.size()});
  m.decoder->load(m.files.decoder_weights, join_path(dir, d.weights));
  m.files.decoder_weights.clear();  // on the device now
  return m;
}

void check_features(const FeatureTable& features, const std::string& path, const LoadedModel& model) {
  int want = model.files.config.decoder.feature_dim;
  if (features.dim != want)
    throw InputError(path, "features are " + std::to_string(features.dim) + "-d but the model " + model.files.dir +
                               " expects " + std::to_string(want) + "-d");
  if (features.images.empty()) throw InputError(path, "no image features in the file");
}

FeatureTable select_images(const FeatureTable& features, const std::vector<std::string>& images,
                           const std::string& list_path) {
  std::vector<char> keep(features.images.size(), 0);
  for (const auto& name : images) {
    auto row = features.find(name);
    if (!row) throw InputError(list_path, "image '" + name + "' is not in the features file");
    keep[*row] = 1;
  }
  FeatureTable out;
  out.dim = features.dim;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (!keep[i]) continue;
    out.images.push_back(features.images[i]);
    out.data.insert(out.data.end(), features.row(i), features.row(i) + features.dim);
  }
  out.reindex();
  return out;
}

}  // namespace caption::cli
