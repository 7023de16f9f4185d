#include "tools/caption_writer.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace caption::cli {
namespace {

std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

CaptionWriter::CaptionWriter(const std::string& output, CaptionFormat format, bool with_path)
    : format_(format), with_path_(with_path) {
  if (!output.empty()) file_ = std::make_unique<AtomicFile>(output);
  if (format_ == CaptionFormat::Csv) pending_ = with_path_ ? "image,path,caption\n" : "image,caption\n";
}

void CaptionWriter::add(const std::string& image, const std::string& path, const std::string& caption) {
  if (format_ == CaptionFormat::Csv) {
    pending_ += csv_field(image) + "," + (with_path_ ? csv_field(path) + "," : "") + csv_field(caption) + "\n";
  } else {
    nlohmann::ordered_json j{{"image", image}};
    if (with_path_) j["path"] = path;
    j["caption"] = caption;
    // Replace invalid UTF-8 in names rather than fail the job on one odd file name.
    pending_ += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  ++count_;
}

void CaptionWriter::flush() {
  if (file_) {
    file_->write(pending_);
  } else {
    std::cout << pending_ << std::flush;
  }
  pending_.clear();
}

void CaptionWriter::commit() {
  flush();
  if (file_) file_->commit();
}

}  // namespace caption::cli
