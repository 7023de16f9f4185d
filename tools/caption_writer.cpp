#include "tools/caption_writer.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/captions.h"
#include "model/read_file.h"
#include "runtime/error.h"

namespace caption::cli {
namespace {

std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A string as a JSONL record holds it: invalid UTF-8 replaced by U+FFFD.
std::string as_written(const std::string& s) {
  return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}

}  // namespace

CaptionWriter::CaptionWriter(const std::string& output, CaptionFormat format, bool with_path, bool resume)
    : format_(format), with_path_(with_path) {
  if (!output.empty()) {
    file_ = std::make_unique<PartialFile>(output, resume);
    keep(file_->take_kept(), output + ".partial");
  }
  if (format_ == CaptionFormat::Csv && count_ == 0 && (!file_ || file_->empty()))
    pending_ = std::string(csv_header()) + "\n";
}

// Learns the keys of the kept records, so that a resumed job skips their images. A JSONL
// record is one line; a CSV record ends at a line break outside quotes (every field is quoted,
// and a path may hold line breaks), so a record that a kill cut inside such a field ends the
// file unbalanced: it is dropped, and captioned again.
void CaptionWriter::keep(const std::string& kept, const std::string& partial_path) {
  size_t line_no = 0, at = 0;
  while (at < kept.size()) {
    const size_t first_line = line_no + 1;
    size_t end = at, quotes = 0;
    bool whole = false;
    for (size_t nl; !whole && (nl = kept.find('\n', end)) != std::string::npos; end = nl + 1) {
      ++line_no;
      quotes += size_t(std::count(kept.begin() + long(end), kept.begin() + long(nl), '"'));
      whole = format_ == CaptionFormat::Jsonl || quotes % 2 == 0;
    }
    if (!whole) {  // only a CSV record can be cut so (kept ends at a line break)
      file_->keep_only(at);
      return;
    }
    const std::string record = kept.substr(at, end - 1 - at);
    at = end;
    std::string key;
    if (format_ == CaptionFormat::Csv) {
      if (first_line == 1) continue;  // the header
      key = csv_fields(record, csv_header(), partial_path, first_line)[with_path_ ? 1 : 0];
    } else {
      auto j = nlohmann::json::parse(record, nullptr, false);
      const char* name = with_path_ ? "path" : "image";
      if (j.is_object() && j.contains(name) && j[name].is_string()) key = j[name].get<std::string>();
    }
    if (key.empty())
      throw InputError(partial_path,
                       at_line(first_line, "not a caption record of this format; remove the file to start afresh"));
    ++done_[key];
    ++count_;
  }
}

bool CaptionWriter::take_done(const std::string& key) {
  if (done_.empty()) return false;
  auto it = done_.find(format_ == CaptionFormat::Jsonl && !is_utf8(key) ? as_written(key) : key);
  if (it == done_.end() || it->second == 0) return false;
  --it->second;
  return true;
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
  if (count_ == 0) return;  // a CSV header alone is no output
  if (file_) {
    file_->append(pending_);
    file_->sync();
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
