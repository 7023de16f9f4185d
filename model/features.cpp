#include "model/features.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "model/safetensors.h"
#include "runtime/error.h"

namespace caption {

std::optional<size_t> FeatureTable::find(const std::string& image) const {
  if (index.size() == images.size()) {
    auto it = index.find(image);
    if (it == index.end()) return std::nullopt;
    return it->second;
  }
  auto it = std::find(images.begin(), images.end(), image);
  if (it == images.end()) return std::nullopt;
  return size_t(it - images.begin());
}

void FeatureTable::reindex() {
  index.clear();
  index.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) index.emplace(images[i], i);
}

FeatureTable read_features(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  if (file.names.empty()) throw InputError(path, "holds no feature tensors");
  FeatureTable t;
  for (const std::string& name : file.names) {
    Tensor& x = file.tensors.at(name);
    if (x.shape.size() != 1 || x.shape[0] == 0)
      throw InputError(path, "tensor '" + name + "': a feature must be a non-empty 1-D tensor");
    if (t.dim == 0) {
      if (x.shape[0] > INT32_MAX) throw InputError(path, "tensor '" + name + "': feature too long");
      t.dim = int(x.shape[0]);
      t.data.reserve(file.names.size() * size_t(t.dim));
    }
    if (x.shape[0] != t.dim)
      throw InputError(path, "tensor '" + name + "': has " + std::to_string(x.shape[0]) + " values, expected " +
                                 std::to_string(t.dim) + " like the first tensor");
    t.data.insert(t.data.end(), x.data.begin(), x.data.end());
    std::vector<float>().swap(x.data);  // keep peak memory near one copy
  }
  t.images = std::move(file.names);
  t.reindex();
  return t;
}

FeatureTable read_features(const std::vector<std::string>& paths) {
  if (paths.empty()) throw std::logic_error("read_features: no files");
  FeatureTable all = read_features(paths.front());
  for (size_t f = 1; f < paths.size(); ++f) {
    const FeatureTable t = read_features(paths[f]);
    if (t.dim != all.dim)
      throw InputError(paths[f], "features are " + std::to_string(t.dim) + "-d, those of " + paths.front() + " " +
                                     std::to_string(all.dim) + "-d");
    for (const std::string& name : t.images) {
      if (!all.index.emplace(name, all.images.size()).second)
        throw InputError(paths[f], "image '" + name + "' is in an earlier features file too");
      all.images.push_back(name);
    }
    all.data.insert(all.data.end(), t.data.begin(), t.data.end());
  }
  return all;
}

std::string features_label(const std::vector<std::string>& paths) {
  if (paths.size() == 1) return paths.front();
  return paths.front() + " (and " + std::to_string(paths.size() - 1) + " more features files)";
}

void write_features(const std::string& path, const FeatureTable& t) {
  if (t.data.size() != t.images.size() * size_t(std::max(t.dim, 0)))
    throw InputError(path, "feature table has " + std::to_string(t.data.size()) + " values for " +
                               std::to_string(t.images.size()) + " images of dimension " + std::to_string(t.dim));
  write_feature_rows(path, t.images, t.dim, [&](size_t i, float* dst) { std::copy(t.row(i), t.row(i) + t.dim, dst); });
}

void write_feature_rows(const std::string& path, const std::vector<std::string>& images, int dim,
                        const std::function<void(size_t, float*)>& row) {
  if (images.empty() || dim <= 0)
    throw InputError(path, "no features to write (" + std::to_string(images.size()) + " images of dimension " +
                               std::to_string(dim) + ")");
  std::vector<TensorSpec> specs;
  specs.reserve(images.size());
  for (const auto& name : images) specs.push_back({name, {dim}});
  write_safetensors(path, specs, row);
}

}  // namespace caption
