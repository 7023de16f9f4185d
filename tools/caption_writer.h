#pragma once
// Where `caption describe` puts captions as they are made: JSONL (one object per line) or CSV,
// on standard output (flushed per batch) or in a file that appears whole only at commit(), so
// a job that fails or is killed leaves no partial output.
#include <memory>
#include <string>

#include "model/atomic_file.h"

namespace caption::cli {

enum class CaptionFormat { Jsonl, Csv };

class CaptionWriter {
 public:
  // output "" = standard output. with_path: records carry the image's path (image inputs).
  CaptionWriter(const std::string& output, CaptionFormat format, bool with_path);
  // `image` is the file name (the key in features files and references); `path` where it was read.
  void add(const std::string& image, const std::string& path, const std::string& caption);
  void flush();  // ends a batch: standard output is flushed
  void commit();
  size_t count() const { return count_; }

 private:
  CaptionFormat format_;
  bool with_path_;
  std::unique_ptr<AtomicFile> file_;
  std::string pending_;
  size_t count_ = 0;
};

}  // namespace caption::cli
