#pragma once
// Where `caption describe` puts captions as they are made: JSONL (one object per line) or CSV,
// on standard output (flushed per batch) or in a file that is built in "<output>.partial"
// (synced per batch) and appears under its name only at commit(). A job that fails or is
// killed leaves no output file, only the partial one (when it holds captions), from which a
// rerun with `resume` continues.
#include <memory>
#include <string>
#include <unordered_map>

#include "model/atomic_file.h"

namespace caption::cli {

enum class CaptionFormat { Jsonl, Csv };

class CaptionWriter {
 public:
  // output "" = standard output. with_path: records carry the image's path (image inputs) and
  // are keyed by it; otherwise by the image name. resume: keep the records of an earlier run's
  // partial file.
  CaptionWriter(const std::string& output, CaptionFormat format, bool with_path, bool resume);
  // `image` is the file name (the key in features files and references); `path` where it was read.
  void add(const std::string& image, const std::string& path, const std::string& caption);
  // Whether `key` has a record kept from an earlier run, taking that record: asked for every
  // input in input order, it answers yes as often as the kept records hold the key. In JSONL,
  // keys are compared as written (invalid UTF-8 replaced), so one record answers for one of the
  // inputs whose names read the same, in order: none is captioned twice or left out.
  bool take_done(const std::string& key);
  void flush();  // ends a batch: standard output is flushed, the partial file synced
  void commit();
  size_t count() const { return count_; }  // records written, kept ones included
  bool saved() const { return file_ && !file_->empty(); }  // the partial file holds records

 private:
  void keep(const std::string& kept, const std::string& partial_path);
  const char* csv_header() const { return with_path_ ? "image,path,caption" : "image,caption"; }
  CaptionFormat format_;
  bool with_path_;
  std::unique_ptr<PartialFile> file_;
  std::unordered_map<std::string, size_t> done_;  // kept records per key
  std::string pending_;
  size_t count_ = 0;
};

}  // namespace caption::cli
