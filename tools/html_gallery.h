#pragma once
// A self-contained HTML page of captioned images (thumbnails embedded as data: URIs, so the
// one file can be mailed or opened anywhere). It grows in "<path>.partial" like the captions
// of `describe --output` (tools/caption_writer.h): one line per image after a header, synced
// per batch, before the captions are, so that a killed job's gallery holds at least the images
// its captions do; a resumed job keeps as many of them as the captions kept. It appears under
// its name at commit(), with the list of images that could not be read.
#include <memory>
#include <string>

#include "model/atomic_file.h"

namespace caption::cli {

class HtmlGallery {
 public:
  static constexpr int kThumbnailSide = 256;  // pixels, longer side

  // resume: keep the header and the first `keep_images` images of an earlier run's partial
  // gallery (the images whose captions were kept); an InputError naming it when it holds fewer
  // or is not a gallery. With none to keep, the gallery starts afresh.
  HtmlGallery(const std::string& path, const std::string& title, bool resume, size_t keep_images);
  void add(const std::string& path, const std::string& caption, const std::string& thumbnail_jpeg);
  void add_failure(const std::string& error);  // listed at the end of the page
  void flush();                                // ends a batch: the partial file is synced
  void commit();

 private:
  std::unique_ptr<PartialFile> file_;
  std::string pending_;  // written at the next flush
  std::string failures_;
  size_t count_ = 0;
};

std::string html_escape(const std::string& text);

}  // namespace caption::cli
