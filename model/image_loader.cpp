#include "model/image_loader.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <filesystem>
#include <set>
#include <string_view>
#include <system_error>

#include "model/read_file.h"
#include "runtime/error.h"

#if CAPTION_HAS_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace fs = std::filesystem;

namespace caption {
namespace {

#if CAPTION_HAS_OPENCV

// What the first bytes of a file say, read before handing it to a decoder: the format, the
// dimensions (width < 0 when this format's header is not parsed here, or is too short), and for
// JPEG whether the data stops before the end-of-image marker (libjpeg only warns about that and
// fills the rest with grey, so a truncated JPEG would otherwise "decode").
struct Header {
  const char* format = nullptr;  // nullptr: not one of the formats recognised here
  int64_t width = -1, height = -1;
  int components = -1;  // JPEG: colour components of the frame (1 grey, 3 YCbCr, 4 CMYK)
  bool truncated = false;
};

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }
uint32_t le16(const uint8_t* p) { return uint32_t(p[1]) << 8 | p[0]; }
uint32_t le32(const uint8_t* p) { return le16(p + 2) << 16 | le16(p); }
uint32_t le24(const uint8_t* p) { return uint32_t(p[2]) << 16 | le16(p); }

// Walks the marker segments; inside entropy-coded data a marker is 0xFF followed by anything
// but 0x00 (a stuffed byte) or 0xD0-0xD7 (restart markers). Progressive files have several
// scans, so the walk continues after each until EOI. Bytes between segments that are no
// marker are skipped up to the next one, as libjpeg does (it warns and reads on), so that a
// frame header after them is still seen: otherwise a 200-byte file could make the decoder
// allocate gigabytes for the size it claims.
void parse_jpeg(const uint8_t* p, size_t n, Header& h) {
  size_t i = 2;  // after SOI
  h.truncated = true;
  while (i + 1 < n) {
    if (p[i] != 0xFF) {  // garbage between segments
      ++i;
      continue;
    }
    uint8_t m = p[i + 1];
    if (m == 0xFF) { ++i; continue; }  // fill byte
    if (m == 0x00) { i += 2; continue; }  // no marker: more garbage
    i += 2;
    if (m == 0xD9) { h.truncated = false; return; }  // EOI
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // markers without a length
    if (i + 2 > n) return;
    size_t len = be16(p + i);
    bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && i + 8 <= n && h.width < 0) {
      h.height = be16(p + i + 3);
      h.width = be16(p + i + 5);
      h.components = p[i + 7];
    }
    i += len;
    if (m == 0xDA) {  // start of scan: skip the entropy-coded data
      while (i + 1 < n && !(p[i] == 0xFF && p[i + 1] != 0x00 && !(p[i + 1] >= 0xD0 && p[i + 1] <= 0xD7))) ++i;
    }
  }
}

void parse_tiff(const uint8_t* p, size_t n, Header& h) {
  bool le = p[0] == 'I';
  auto u16 = [&](size_t o) { return le ? le16(p + o) : be16(p + o); };
  auto u32 = [&](size_t o) { return le ? le32(p + o) : be32(p + o); };
  size_t ifd = u32(4);
  if (ifd + 2 > n) return;
  size_t count = u16(ifd);
  for (size_t e = 0; e < count && ifd + 2 + 12 * (e + 1) <= n; ++e) {
    size_t o = ifd + 2 + 12 * e;
    uint32_t tag = u16(o), type = u16(o + 2);
    if ((tag != 256 && tag != 257) || (type != 3 && type != 4)) continue;  // width/length as SHORT or LONG
    int64_t v = type == 3 ? u16(o + 8) : u32(o + 8);
    (tag == 256 ? h.width : h.height) = v;
  }
  if (h.width < 0 || h.height < 0) h.width = h.height = -1;
}

Header read_header(const std::string& bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  // The length check first: compare() throws std::out_of_range when `at` is past the end.
  auto starts = [&](std::string_view magic, size_t at = 0) {
    return n >= at + magic.size() && bytes.compare(at, magic.size(), magic) == 0;
  };
  Header h;
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
    h.format = "JPEG";
    parse_jpeg(p, n, h);
  } else if (starts("\x89PNG\r\n\x1a\n")) {
    h.format = "PNG";
    if (n >= 24 && starts("IHDR", 12)) h.width = be32(p + 16), h.height = be32(p + 20);
  } else if (starts("BM")) {
    h.format = "BMP";
    if (n >= 26 && le32(p + 14) == 12) {  // OS/2 core header: 16-bit sizes
      h.width = le16(p + 18), h.height = le16(p + 20);
    } else if (n >= 26) {  // Windows headers: signed 32-bit sizes, negative height = top-down rows
      h.width = std::abs(int64_t(int32_t(le32(p + 18)))), h.height = std::abs(int64_t(int32_t(le32(p + 22))));
    }
  } else if (starts("RIFF") && starts("WEBP", 8)) {
    h.format = "WebP";
    if (n >= 30 && starts("VP8 ", 12)) h.width = le16(p + 26) & 0x3FFF, h.height = le16(p + 28) & 0x3FFF;
    else if (n >= 25 && starts("VP8L", 12)) {
      uint32_t bits = le32(p + 21);
      h.width = (bits & 0x3FFF) + 1, h.height = (bits >> 14 & 0x3FFF) + 1;
    } else if (n >= 30 && starts("VP8X", 12)) h.width = le24(p + 24) + 1, h.height = le24(p + 27) + 1;
  } else if (n >= 8 && (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4)))) {
    h.format = "TIFF";
    parse_tiff(p, n, h);
  }
  return h;
}

void check_size(const std::string& path, int64_t w, int64_t h, const ImageOptions& opt) {
  if (w > 0 && h > opt.max_pixels / w)  // w * h > max_pixels, without overflowing
    throw InputError(path, "image is " + std::to_string(w) + "x" + std::to_string(h) + ", above the limit of " +
                               std::to_string(opt.max_pixels) + " pixels");
}

// libjpeg can decode at 1/2, 1/4 or 1/8 of the size, scaling in the DCT and so skipping most of
// the inverse transform and colour conversion: a 4000x3000 photo reaches 224x224 in 47 ms
// instead of 135 (1/4). The largest factor is taken that leaves the decoded image at least twice
// `need` on both sides, so the area filter after it still averages 2x2 or more pixels into each
// output pixel: on such photos the network input moves by 0.2-0.4 grey levels on average (the
// area filter itself differs from PIL's bilinear one by 1.5). Grey and YCbCr JPEGs only (CMYK
// stays with our conversion, to_rgb8).
int jpeg_reduction(const Header& h, int64_t need_w, int64_t need_h) {
  if (h.format == nullptr || std::string_view(h.format) != "JPEG" || (h.components != 1 && h.components != 3))
    return 1;
  for (int f : {8, 4, 2})
    if ((h.width + f - 1) / f >= 2 * need_w && (h.height + f - 1) / f >= 2 * need_h) return f;
  return 1;
}

// The decoder flags for a reduction factor: IMREAD_UNCHANGED keeps 16-bit samples and alpha
// (handled in to_rgb8); the reduced modes are 8-bit grey or BGR. None applies EXIF orientation,
// as neither PIL nor Keras' load_img does.
int decode_flags(const Header& h, int reduction) {
  if (reduction == 1) return cv::IMREAD_UNCHANGED;
  const bool grey = h.components == 1;
  const int mode = reduction == 2   ? (grey ? cv::IMREAD_REDUCED_GRAYSCALE_2 : cv::IMREAD_REDUCED_COLOR_2)
                   : reduction == 4 ? (grey ? cv::IMREAD_REDUCED_GRAYSCALE_4 : cv::IMREAD_REDUCED_COLOR_4)
                                    : (grey ? cv::IMREAD_REDUCED_GRAYSCALE_8 : cv::IMREAD_REDUCED_COLOR_8);
  return mode | cv::IMREAD_IGNORE_ORIENTATION;
}

// Decoded pixels as 8-bit RGB: the conversions PIL's Image.convert("RGB") makes (grey
// replicated, alpha dropped without compositing), 16-bit samples scaled by 255/65535.
cv::Mat to_rgb8(const std::string& path, const cv::Mat& img) {
  cv::Mat img8;
  if (img.depth() == CV_8U) img8 = img;
  else if (img.depth() == CV_16U) img.convertTo(img8, CV_8U, 1.0 / 257);  // rounds to nearest
  else throw InputError(path, "unsupported sample type (only 8- and 16-bit integer images are read)");
  cv::Mat rgb;
  switch (img8.channels()) {
    case 1: cv::cvtColor(img8, rgb, cv::COLOR_GRAY2RGB); break;
    case 2: {  // grey + alpha
      cv::Mat grey;
      cv::extractChannel(img8, grey, 0);
      cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
      break;
    }
    case 3: cv::cvtColor(img8, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(img8, rgb, cv::COLOR_BGRA2RGB); break;
    default: throw InputError(path, "unsupported channel count " + std::to_string(img8.channels()));
  }
  return rgb;
}

// PIL's bilinear resize (Keras load_img(interpolation="bilinear"), torchvision's Resize) widens
// its filter when shrinking, so every source pixel counts. OpenCV's INTER_LINEAR always reads
// just the 2x2 nearest pixels and aliases when shrinking; INTER_AREA (a box filter) is much
// closer: on the 20 Flickr8k originals squashed to 224x224 it is within 1.5 levels on average
// of PIL's output, INTER_LINEAR 4.0. Enlarging (either side) uses INTER_LINEAR.
void resize(const cv::Mat& src, cv::Mat& dst, int w, int h) {
  const bool shrink = w <= src.cols && h <= src.rows;
  cv::resize(src, dst, cv::Size(w, h), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
}

void make_thumbnail(const cv::Mat& rgb, Thumbnail& t) {
  const double scale = std::min(1.0, double(t.max_side) / std::max(rgb.cols, rgb.rows));
  cv::Mat small, bgr;
  resize(rgb, small, std::max(1, int(rgb.cols * scale + 0.5)), std::max(1, int(rgb.rows * scale + 0.5)));
  cv::cvtColor(small, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> buf;
  cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, 80});
  t.jpeg.assign(buf.begin(), buf.end());
}

#endif  // CAPTION_HAS_OPENCV

bool has_image_extension(const fs::path& p) {
  static const std::set<std::string> exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return exts.count(e) > 0;
}

// Appends the image files under folder `dir`, sorted by path: every entry with an image
// extension that is not a folder. A link that loops or dangles, or a FIFO, is kept, so that
// loading it reports it like any other unreadable image instead of the walk failing or leaving
// it out unsaid. Directory symlinks are not followed, so a link back up the tree cannot loop.
void expand_folder(const std::string& dir, std::vector<std::string>& out) {
  std::vector<std::string> found;
  try {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      std::error_code ec;  // set when the entry cannot be resolved: then it is no folder either
      if (has_image_extension(e.path()) && !e.is_directory(ec)) found.push_back(e.path().string());
    }
  } catch (const fs::filesystem_error& e) {
    throw InputError(e.path1().empty() ? dir : e.path1().string(), "cannot list folder: " + e.code().message());
  }
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

}  // namespace

bool image_support_available() { return CAPTION_HAS_OPENCV; }

void load_image(const std::string& path, const ImageOptions& opt, uint8_t* out, Thumbnail* thumbnail) {
#if CAPTION_HAS_OPENCV
  const std::string bytes = read_file(path);
  if (bytes.empty()) throw InputError(path, "empty file, not an image");
  if (bytes.size() > size_t(INT_MAX)) throw InputError(path, "file too large for the image decoder (over 2 GiB)");
  const Header h = read_header(bytes);
  // Only formats whose size is checked from the header reach the decoders (OpenCV reads more,
  // PPM and Radiance HDR among them, whose headers could claim any size).
  if (!h.format) throw InputError(path, "not an image (unrecognised format; JPEG, PNG, BMP, WebP and TIFF are read)");
  if (h.truncated) throw InputError(path, std::string("truncated ") + h.format + " data");
  if (h.width >= 0) check_size(path, h.width, h.height, opt);

  // What the resize needs: size x size (squash), or the shorter side at round(size * 256/224)
  // (torchvision's Resize(256) + CenterCrop(224), scaled with size), from the full image's size.
  const int size = opt.image_size;
  const int64_t short_side = std::lround(size * 256.0 / 224.0);
  auto crop_resize = [&](int64_t w, int64_t hgt) {  // the longer side: int(short * long / shorter)
    return std::pair<int64_t, int64_t>{w <= hgt ? short_side : short_side * w / hgt,
                                       w <= hgt ? short_side * hgt / w : short_side};
  };
  int reduction = 1;
  if (h.width > 0 && h.height > 0) {
    const auto [nw, nh] = opt.resize == ResizeMode::Squash ? std::pair<int64_t, int64_t>{size, size}
                                                           : crop_resize(h.width, h.height);
    reduction = jpeg_reduction(h, nw, nh);
  }

  cv::Mat img;
  try {
    img = cv::imdecode(cv::Mat(1, int(bytes.size()), CV_8U, const_cast<char*>(bytes.data())), decode_flags(h, reduction));
  } catch (const cv::Exception& e) {
    throw InputError(path, "cannot decode image: " + e.err);
  }
  if (img.empty()) throw InputError(path, std::string("corrupt or truncated ") + h.format + " data");
  check_size(path, img.cols, img.rows, opt);  // headers whose size was not parsed above
  const cv::Mat rgb = to_rgb8(path, img);
  if (thumbnail) make_thumbnail(rgb, *thumbnail);

  cv::Mat square;
  if (opt.resize == ResizeMode::Squash) {
    resize(rgb, square, size, size);
  } else {
    // From the full size, as the header says when the decoder gave 1/reduction of it. The crop
    // origin is round((resized - size) / 2) with Python's round-half-to-even (lrint's default).
    const bool from_header = reduction > 1 && rgb.cols == (h.width + reduction - 1) / reduction &&
                             rgb.rows == (h.height + reduction - 1) / reduction;
    const int64_t w = from_header ? h.width : rgb.cols, hgt = from_header ? h.height : rgb.rows;
    const auto [nw, nh] = crop_resize(w, hgt);
    if (nh > opt.max_pixels / nw)  // a thin strip: its longer side would grow too far
      throw InputError(path, "image is " + std::to_string(w) + "x" + std::to_string(hgt) + ": too elongated to " +
                                 "centre-crop (the resize to " + std::to_string(nw) + "x" + std::to_string(nh) +
                                 " is above the limit of " + std::to_string(opt.max_pixels) + " pixels)");
    cv::Mat resized;
    resize(rgb, resized, int(nw), int(nh));
    const int left = int(std::lrint((nw - size) / 2.0)), top = int(std::lrint((nh - size) / 2.0));
    square = resized(cv::Rect(left, top, size, size));
  }
  cv::Mat dst(size, size, CV_8UC3, out);
  square.copyTo(dst);  // dst already has the right size and type, so this writes into `out`
#else
  (void)opt;
  (void)out;
  (void)thumbnail;
  throw InputError(path, "cannot read images: this build of caption has no image support (OpenCV was not found)");
#endif
}

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    if (in.size() > 1 && in[0] == '@') {
      const std::string list = in.substr(1);
      const fs::path base = fs::path(list).parent_path();
      for_each_line(read_file(list), [&](size_t, std::string_view line) {
        std::string_view entry = trim(line);
        if (entry.empty()) return;
        fs::path p(entry);
        std::string path = (p.is_relative() ? base / p : p).string();
        // A missing or unreadable file of a long list is reported and skipped when its turn
        // comes (as an unreadable image is), not a reason to refuse the whole job; a folder is
        // walked now, and one that cannot be listed stops the job here, before any work.
        std::error_code ec;
        if (fs::is_directory(path, ec)) expand_folder(path, out);
        else out.push_back(path);
      });
    } else {
      std::error_code ec;
      const fs::file_status st = fs::status(in, ec);
      if (st.type() == fs::file_type::not_found) throw InputError(in, "no such file or folder");
      if (st.type() == fs::file_type::none) throw InputError(in, ec.message());  // a link loop, no permission
      if (fs::is_directory(st)) expand_folder(in, out);
      else out.push_back(in);
    }
  }
  return out;
}

}  // namespace caption
