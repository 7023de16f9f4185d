#include "tools/html_gallery.h"

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
      default: out += c;
    }
  }
  return out;
}

HtmlGallery::HtmlGallery(const std::string& path, const std::string& title) : file_(path) {
  file_.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
              "</title>\n<style>body{font-family:sans-serif;margin:1.5em;background:#fafafa}"
              "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1em}"
              "figure{margin:0;background:#fff;padding:.5em;border:1px solid #ddd;border-radius:4px}"
              "img{display:block;max-width:100%;height:auto;margin:auto}"
              "figcaption{margin-top:.4em}.path{color:#777;font-size:.8em;word-break:break-all}</style>\n"
              "</head><body>\n<h1>" + html_escape(title) + "</h1>\n<main>\n");
}

void HtmlGallery::add(const std::string& path, const std::string& caption, const std::string& thumbnail_jpeg) {
  file_.write("<figure><img alt=\"" + html_escape(caption) + "\" src=\"data:image/jpeg;base64," +
              base64_encode(thumbnail_jpeg) + "\"><figcaption>" + html_escape(caption) + "<div class=\"path\">" +
              html_escape(path) + "</div></figcaption></figure>\n");
  ++count_;
}

void HtmlGallery::add_failure(const std::string& error) { failures_ += "<li>" + html_escape(error) + "</li>\n"; }

void HtmlGallery::commit() {
  std::string end = "</main>\n";
  if (!failures_.empty()) end += "<h2>Images that could not be read</h2>\n<ul>\n" + failures_ + "</ul>\n";
  file_.write(end + "<p>" + std::to_string(count_) + " images captioned by caption.</p>\n</body></html>\n");
  file_.commit();
}

}  // namespace caption::cli
