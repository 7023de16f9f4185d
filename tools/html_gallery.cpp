#include "tools/html_gallery.h"

#include <string>

#include "runtime/error.h"
#include "tools/base64.h"

namespace caption::cli {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\n': out += "&#10;"; break;  // one line per image in the partial file
      case '\r': out += "&#13;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

constexpr const char* kHeaderEnd = "<main>\n";  // the header's last line; one line per image follows

// The kept header and first `keep` image lines of a partial gallery, in bytes; throws when it
// holds fewer images or is not a gallery.
size_t kept_bytes(const std::string& kept, size_t keep, const std::string& partial) {
  const size_t header = kept.find(kHeaderEnd);
  if (header == std::string::npos || kept.compare(0, 15, "<!DOCTYPE html>") != 0)
    throw InputError(partial, "not a partial gallery of caption describe; remove it to start afresh");
  size_t at = header + std::char_traits<char>::length(kHeaderEnd);
  for (size_t i = 0; i < keep; ++i) {
    if (kept.compare(at, 8, "<figure ") != 0 && kept.compare(at, 8, "<figure>") != 0)
      throw InputError(partial, "holds " + std::to_string(i) + " images, the captions kept " + std::to_string(keep) +
                                    ": remove the partial files to start afresh");
    at = kept.find('\n', at) + 1;  // complete lines only: there is one
  }
  return at;
}

}  // namespace

HtmlGallery::HtmlGallery(const std::string& path, const std::string& title, bool resume, size_t keep_images)
    : file_(std::make_unique<PartialFile>(path, resume)) {
  const std::string partial = path + ".partial";
  const std::string kept = file_->take_kept();
  if (keep_images > 0) {
    if (kept.empty())
      throw InputError(partial, "missing or empty: --resume with --html needs the gallery of the job that stopped");
    file_->keep_only(kept_bytes(kept, keep_images, partial));
    count_ = keep_images;
    return;
  }
  if (!kept.empty()) file_->keep_only(0);  // nothing to keep: a gallery of this job from the start
  pending_ = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
             "</title>\n<style>body{font-family:sans-serif;margin:1.5em;background:#fafafa}"
             "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1em}"
             "figure{margin:0;background:#fff;padding:.5em;border:1px solid #ddd;border-radius:4px}"
             "img{display:block;max-width:100%;height:auto;margin:auto}"
             "figcaption{margin-top:.4em}.path{color:#777;font-size:.8em;word-break:break-all}</style>\n"
             "</head><body>\n<h1>" + html_escape(title) + "</h1>\n" + kHeaderEnd;
}

void HtmlGallery::add(const std::string& path, const std::string& caption, const std::string& thumbnail_jpeg) {
  pending_ += "<figure><img alt=\"" + html_escape(caption) + "\" src=\"data:image/jpeg;base64," +
              base64_encode(thumbnail_jpeg) + "\"><figcaption>" + html_escape(caption) + "<div class=\"path\">" +
              html_escape(path) + "</div></figcaption></figure>\n";
  ++count_;
}

void HtmlGallery::add_failure(const std::string& error) { failures_ += "<li>" + html_escape(error) + "</li>\n"; }

void HtmlGallery::flush() {
  if (count_ == 0) return;  // a header alone is no gallery: a job that captions nothing leaves none
  file_->append(pending_);
  file_->sync();
  pending_.clear();
}

void HtmlGallery::commit() {
  std::string end = "</main>\n";
  if (!failures_.empty()) end += "<h2>Images that could not be read</h2>\n<ul>\n" + failures_ + "</ul>\n";
  file_->append(pending_ + end + "<p>" + std::to_string(count_) + " images captioned by caption.</p>\n</body></html>\n");
  file_->commit();
}

}  // namespace caption::cli
