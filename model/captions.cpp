#include "model/captions.h"

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

// "image,caption"
CaptionRecord parse_csv_line(std::string_view line, const std::string& path, size_t line_no) {
  CaptionRecord r;
  r.image = std::string(trim(csv_field(line, false, path, line_no)));
  if (line.empty() || line.front() != ',')
    throw InputError(path, at_line(line_no, "expected 'image,caption'"));
  line.remove_prefix(1);
  r.text = std::string(trim(csv_field(line, true, path, line_no)));
  if (!trim(line).empty()) throw InputError(path, at_line(line_no, "text after the closing quote of the caption"));
  if (r.image.empty()) throw InputError(path, at_line(line_no, "empty image name"));
  if (r.text.empty()) throw InputError(path, at_line(line_no, "empty caption"));
  return r;
}

std::string_view without_bom(std::string_view s) {
  return s.substr(0, 3) == "\xEF\xBB\xBF" ? s.substr(3) : s;
}

}  // namespace

std::vector<CaptionRecord> read_captions(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<CaptionRecord> records;
  bool csv = false, first = true;
  for_each_line(without_bom(text), [&](size_t line_no, std::string_view line) {
    if (trim(line).empty()) return;
    if (!is_utf8(line)) throw InputError(path, at_line(line_no, "not valid UTF-8"));
    if (first) {
      first = false;
      csv = trim(line) == "image,caption";
      if (csv) return;
    }
    records.push_back(csv ? parse_csv_line(line, path, line_no) : parse_token_line(line, path, line_no));
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
