#pragma once
// Caption files: the Flickr8k token file or the Kaggle captions.txt CSV.
#include <string>
#include <vector>

namespace caption {

struct CaptionRecord {
  std::string image;
  std::string text;
};

// Flickr8k token file ("IMAGE.jpg#N<TAB>caption"; the image is the part before the last '#')
// or Kaggle captions.txt (header "image,caption"; a caption may be double-quoted with ""
// escapes and contain commas). The first line decides the format. Empty lines are skipped; a
// malformed line is an InputError with its line number.
std::vector<CaptionRecord> read_captions(const std::string& path);

// One image name per line, trimmed; blank lines skipped.
std::vector<std::string> read_image_list(const std::string& path);

}  // namespace caption
