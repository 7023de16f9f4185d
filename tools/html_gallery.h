#pragma once
// A self-contained HTML page of captioned images (thumbnails embedded as data: URIs, so the
// one file can be mailed or opened anywhere), written as images come and made visible at
// commit() like every output file.
#include <string>

#include "model/atomic_file.h"

namespace caption::cli {

class HtmlGallery {
 public:
  static constexpr int kThumbnailSide = 256;  // pixels, longer side

  HtmlGallery(const std::string& path, const std::string& title);
  void add(const std::string& path, const std::string& caption, const std::string& thumbnail_jpeg);
  void add_failure(const std::string& error);  // listed at the end of the page
  void commit();

 private:
  AtomicFile file_;
  std::string failures_;
  size_t count_ = 0;
};

std::string html_escape(const std::string& text);

}  // namespace caption::cli
