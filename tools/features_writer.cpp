#include "tools/features_writer.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "runtime/error.h"
#include "tools/base64.h"

namespace caption::cli {

FeaturesWriter::FeaturesWriter(const std::string& output, int dim, bool resume)
    : output_(output), file_(output, resume) {
  table_.dim = dim;
  keep(file_.kept(), output + ".partial");
}

// Reads back the records of an earlier run; anything but this writer's lines is refused.
void FeaturesWriter::keep(const std::string& lines, const std::string& partial_path) {
  size_t line_no = 0;
  for (size_t at = 0; at < lines.size();) {
    const size_t end = lines.find('\n', at);
    const std::string line = lines.substr(at, end - at);
    at = end + 1;
    ++line_no;
    auto bad = [&](const std::string& why) {
      return InputError(partial_path, "line " + std::to_string(line_no) + ": " + why);
    };
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("image") || !j["image"].is_string() || !j.contains("path") ||
        !j["path"].is_string() || !j.contains("f32") || !j["f32"].is_string())
      throw bad("not a record of `caption features` (image, path, f32)");
    const std::string name = j["image"].get<std::string>();
    const std::optional<std::string> path = base64_decode(j["path"].get<std::string>());
    const std::optional<std::string> row = base64_decode(j["f32"].get<std::string>());
    if (!path || !row) throw bad("path or f32 is not base64");
    if (row->size() != size_t(table_.dim) * sizeof(float))
      throw bad("a row of " + std::to_string(row->size() / sizeof(float)) + " values where the encoder gives " +
                std::to_string(table_.dim));
    if (!names_.insert(name).second) throw bad("a second row for " + name);
    kept_paths_.insert(*path);
    table_.images.push_back(name);
    const size_t offset = table_.data.size();
    table_.data.resize(offset + size_t(table_.dim));
    std::memcpy(table_.data.data() + offset, row->data(), row->size());
  }
}

void FeaturesWriter::add(const std::string& name, const std::string& path, const float* row) {
  if (!names_.insert(name).second) throw std::logic_error("FeaturesWriter::add: a second row for " + name);
  table_.images.push_back(name);
  table_.data.insert(table_.data.end(), row, row + table_.dim);
  const nlohmann::json record = {
      {"image", name},
      {"path", base64_encode(path)},
      {"f32", base64_encode({reinterpret_cast<const char*>(row), size_t(table_.dim) * sizeof(float)})}};
  pending_ += record.dump() + "\n";
}

void FeaturesWriter::flush() {
  file_.append(pending_);
  pending_.clear();
  file_.sync();
}

void FeaturesWriter::commit() {
  flush();
  write_features(output_, table_);
  file_.discard();
}

}  // namespace caption::cli
