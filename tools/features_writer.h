#pragma once
// Where `caption features` puts image features as they are made. Each batch's rows are appended
// to "<output>.partial" and synced, one JSON line per image: {"image": file name, "path":
// base64 of the path's bytes, "f32": base64 of the little-endian F32 row}. commit() writes the
// safetensors file from that partial file (atomically, rows in the order they came, one row in
// memory at a time) and then removes it. A job that fails or is killed leaves no features
// file, only the partial one (when it holds rows), from which a rerun with `resume` continues:
// it reads the kept lines once, at the start (as much memory as the partial file, briefly),
// and keeps only their names and paths.
#include <string>
#include <unordered_set>
#include <vector>

#include "model/atomic_file.h"

namespace caption::cli {

class FeaturesWriter {
 public:
  // resume: keep the rows of an earlier run's partial file; each must have `dim` values.
  FeaturesWriter(const std::string& output, int dim, bool resume);
  bool has_path(const std::string& path) const { return kept_paths_.count(path) > 0; }  // kept
  bool has_image(const std::string& name) const { return names_.count(name) > 0; }      // kept or added
  // A row of dim values for an image whose name is not held yet.
  void add(const std::string& name, const std::string& path, const float* row);
  void flush();  // ends a batch: its rows reach the partial file, synced
  void commit();
  size_t count() const { return images_.size(); }  // rows, kept ones included

 private:
  std::string output_, partial_path_;
  int dim_;
  PartialFile file_;
  std::vector<std::string> images_;  // in row order
  std::unordered_set<std::string> kept_paths_, names_;
  std::string pending_;
};

}  // namespace caption::cli
