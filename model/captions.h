#pragma once
// Caption files: the Flickr8k token file or the Kaggle captions.txt CSV.
#include <string>
#include <string_view>
#include <vector>

namespace caption {

struct CaptionRecord {
  std::string image;
  std::string text;
};

// Flickr8k token file ("IMAGE.jpg#N<TAB>caption"; the image is the part before the last '#')
// or CSV: Kaggle captions.txt (header "image,caption"; a caption may be double-quoted with ""
// escapes and contain commas) or `caption describe --format csv` on images (header
// "image,path,caption"). The first line decides the format. Empty lines are skipped; a
// malformed line is an InputError with its line number.
std::vector<CaptionRecord> read_captions(const std::string& path);

// "image,caption" or "image,path,caption" (surrounding blanks ignored).
bool is_caption_csv_header(std::string_view line);

// The fields of a CSV line under `header` (as many as it names): each quoted ("" for a quote;
// commas allowed) or bare, a bare last field taking the rest of the line, commas included.
// Anything else is an InputError naming the file and line.
std::vector<std::string> csv_fields(std::string_view line, std::string_view header, const std::string& path,
                                    size_t line_no);

// One image name per line, trimmed; blank lines skipped.
std::vector<std::string> read_image_list(const std::string& path);

}  // namespace caption
