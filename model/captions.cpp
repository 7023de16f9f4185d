#include "model/captions.h"

#include <algorithm>

#include "model/read_file.h"
#include "runtime/error.h"

namespace caption {
namespace {

// "IMAGE.jpg#N<TAB>caption"
CaptionRecord parse_token_line(std::string_view line, const std::string& path, size_t line_no) {
  const size_t tab = line.find('\t');
  if (tab == std::string_view::npos) throw InputError(path, at_line(line_no, "missing tab between key and caption"));
  const std::string_view key = trim(line.substr(0, tab));
  const size_t hash = key.rfind('#');
  if (hash == std::string_view::npos) throw InputError(path, at_line(line_no, "key has no '#N' caption number"));
  CaptionRecord r{std::string(trim(key.substr(0, hash))), std::string(trim(line.substr(tab + 1)))};
  if (r.image.empty()) throw InputError(path, at_line(line_no, "empty image name"));
  if (r.text.empty()) throw InputError(path, at_line(line_no, "empty caption"));
  return r;
}

// One CSV field starting at `s`: a quoted field (with "" for a quote) or, unquoted, the text up
// to the first comma, or all of it when `rest_of_line` (an unquoted caption may hold commas).
// Advances `s` past the field.
std::string csv_field(std::string_view& s, bool rest_of_line, const std::string& path, size_t line_no) {
  if (s.empty() || s.front() != '"') {
    size_t end = rest_of_line ? s.size() : s.find(',');
    if (end == std::string_view::npos) end = s.size();
    std::string field(s.substr(0, end));
    s.remove_prefix(end);
    return field;
  }
  std::string field;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] != '"') {
      field += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '"') {
      field += '"';
      ++i;
    } else {
      s.remove_prefix(i + 1);
      return field;
    }
  }
  throw InputError(path, at_line(line_no, "unterminated quoted field"));
}

// A line under `header`: image first, caption last.
CaptionRecord parse_csv_line(std::string_view line, std::string_view header, const std::string& path,
                             size_t line_no) {
  const auto fields = csv_fields(line, header, path, line_no);
  CaptionRecord r{std::string(trim(fields.front())), std::string(trim(fields.back()))};
  if (r.image.empty()) throw InputError(path, at_line(line_no, "empty image name"));
  if (r.text.empty()) throw InputError(path, at_line(line_no, "empty caption"));
  return r;
}

std::string_view without_bom(std::string_view s) {
  return s.substr(0, 3) == "\xEF\xBB\xBF" ? s.substr(3) : s;
}

}  // namespace

bool is_caption_csv_header(std::string_view line) {
  line = trim(line);
  return line == "image,caption" || line == "image,path,caption";
}

std::vector<std::string> csv_fields(std::string_view line, std::string_view header, const std::string& path,
                                    size_t line_no) {
  const size_t count = size_t(std::count(header.begin(), header.end(), ',')) + 1;
  std::vector<std::string> fields;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) {
      if (line.empty() || line.front() != ',')
        throw InputError(path, at_line(line_no, "expected '" + std::string(header) + "'"));
      line.remove_prefix(1);
    }
    fields.push_back(csv_field(line, i + 1 == count, path, line_no));
  }
  if (!trim(line).empty()) throw InputError(path, at_line(line_no, "text after the closing quote of the last field"));
  return fields;
}

std::vector<CaptionRecord> read_captions(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<CaptionRecord> records;
  std::string header;  // of a CSV file
  bool first = true;
  for_each_line(without_bom(text), [&](size_t line_no, std::string_view line) {
    if (trim(line).empty()) return;
    if (!is_utf8(line)) throw InputError(path, at_line(line_no, "not valid UTF-8"));
    if (first) {
      first = false;
      if (is_caption_csv_header(line)) {
        header = trim(line);
        return;
      }
    }
    records.push_back(!header.empty() ? parse_csv_line(line, header, path, line_no)
                                      : parse_token_line(line, path, line_no));
  });
  return records;
}

std::vector<std::string> read_image_list(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> names;
  for_each_line(without_bom(text), [&](size_t, std::string_view line) {
    if (!trim(line).empty()) names.emplace_back(trim(line));
  });
  return names;
}

}  // namespace caption
