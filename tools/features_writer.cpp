#include "tools/features_writer.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

#include "model/features.h"
#include "runtime/error.h"
#include "tools/base64.h"

namespace caption::cli {
namespace {

struct Record {
  std::string image, path, row;  // row: dim * 4 bytes
};

// Line `line_no` of the partial file; anything but this writer's records is refused.
Record parse_record(const std::string& line, size_t line_no, int dim, const std::string& partial_path) {
  auto bad = [&](const std::string& why) {
    return InputError(partial_path, "line " + std::to_string(line_no) + ": " + why);
  };
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("image") || !j["image"].is_string() || !j.contains("path") ||
      !j["path"].is_string() || !j.contains("f32") || !j["f32"].is_string())
    throw bad("not a record of `caption features` (image, path, f32)");
  std::optional<std::string> path = base64_decode(j["path"].get<std::string>());
  std::optional<std::string> row = base64_decode(j["f32"].get<std::string>());
  if (!path || !row) throw bad("path or f32 is not base64");
  if (row->size() != size_t(dim) * sizeof(float))
    throw bad("a row of " + std::to_string(row->size() / sizeof(float)) + " values where the encoder gives " +
              std::to_string(dim));
  return {j["image"].get<std::string>(), std::move(*path), std::move(*row)};
}

}  // namespace

FeaturesWriter::FeaturesWriter(const std::string& output, int dim, bool resume)
    : output_(output), partial_path_(output + ".partial"), dim_(dim), file_(output, resume) {
  const std::string lines = file_.take_kept();
  size_t line_no = 0;
  for (size_t at = 0; at < lines.size();) {
    const size_t end = lines.find('\n', at);
    Record r = parse_record(lines.substr(at, end - at), ++line_no, dim_, partial_path_);
    at = end + 1;
    if (!names_.insert(r.image).second)
      throw InputError(partial_path_, "line " + std::to_string(line_no) + ": a second row for " + r.image);
    kept_paths_.insert(std::move(r.path));
    images_.push_back(std::move(r.image));
  }
}

void FeaturesWriter::add(const std::string& name, const std::string& path, const float* row) {
  if (!names_.insert(name).second) throw std::logic_error("FeaturesWriter::add: a second row for " + name);
  images_.push_back(name);
  const nlohmann::json record = {
      {"image", name},
      {"path", base64_encode(path)},
      {"f32", base64_encode({reinterpret_cast<const char*>(row), size_t(dim_) * sizeof(float)})}};
  pending_ += record.dump() + "\n";
}

void FeaturesWriter::flush() {
  file_.append(pending_);
  pending_.clear();
  file_.sync();
}

void FeaturesWriter::commit() {
  flush();
  // Row i is line i of the partial file: the kept lines, then this run's.
  std::ifstream in(partial_path_, std::ios::binary);
  if (!in) throw InputError(partial_path_, "cannot read it back");
  std::string line;
  size_t line_no = 0;
  write_feature_rows(output_, images_, dim_, [&](size_t i, float* dst) {
    if (!std::getline(in, line)) throw InputError(partial_path_, "ends before row " + std::to_string(i + 1));
    const Record r = parse_record(line, ++line_no, dim_, partial_path_);
    if (r.image != images_[i]) throw InputError(partial_path_, "line " + std::to_string(line_no) + " changed");
    std::memcpy(dst, r.row.data(), r.row.size());
  });
  file_.discard();
}

}  // namespace caption::cli
