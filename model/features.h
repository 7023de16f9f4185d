#pragma once
// Precomputed image features: a safetensors file with one 1-D F32/F16/BF16 tensor [D] per image,
// keyed by the image's file name. Held as one dense [images, D] matrix for batching.
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace caption {

struct FeatureTable {
  std::vector<std::string> images;
  int dim = 0;
  std::vector<float> data;  // [images.size(), dim]
  std::unordered_map<std::string, size_t> index;  // image -> row; filled by read_features / reindex()

  const float* row(size_t i) const { return data.data() + i * size_t(dim); }  // i < images.size()
  // The row of `image`. Uses the index when it covers `images`, else scans (a table built by hand).
  std::optional<size_t> find(const std::string& image) const;
  void reindex();
};

// Every tensor must be 1-D with the same non-zero length, else an InputError naming the tensor.
// Rows are in the file's header order.
FeatureTable read_features(const std::string& path);
// Several files as one table (the shards of a `caption features --shard` job, say): rows in file
// order, then each file's. They must have one dimension and no image twice, else an InputError
// naming the file that breaks the rule.
FeatureTable read_features(const std::vector<std::string>& paths);
// Names several features files in an error about all of them: the first, and how many more.
std::string features_label(const std::vector<std::string>& paths);
// Writes F32 tensors in row order (atomic); the sizes must agree and the names be unique.
void write_features(const std::string& path, const FeatureTable& t);
// The same file with row i written by row(i, dst) into dst (dim floats) when the file reaches
// it: one row is held at a time, however many images there are.
void write_feature_rows(const std::string& path, const std::vector<std::string>& images, int dim,
                        const std::function<void(size_t, float*)>& row);

}  // namespace caption
