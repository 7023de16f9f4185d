#include "tools/loss_plot.h"

#if CAPTION_HAS_PNG
#include <png.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "model/atomic_file.h"
#include "runtime/error.h"

namespace caption::cli {
namespace {

constexpr int kW = 640, kH = 400, kLeft = 50, kRight = 20, kTop = 20, kBottom = 30;

struct Canvas {
  std::vector<unsigned char> rgb = std::vector<unsigned char>(kW * kH * 3, 255);
  void dot(int x, int y, const unsigned char* c) {
    if (x < 0 || y < 0 || x >= kW || y >= kH) return;
    std::copy(c, c + 3, rgb.begin() + (size_t(y) * kW + x) * 3);
  }
  void line(double x0, double y0, double x1, double y1, const unsigned char* c) {
    int n = int(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0))) + 1;
    for (int i = 0; i <= n; ++i) {
      double t = double(i) / n;
      int x = int(std::lround(x0 + (x1 - x0) * t)), y = int(std::lround(y0 + (y1 - y0) * t));
      for (int d = 0; d < 2; ++d) dot(x, y + d, c);
    }
  }
  // 3x5 digits and '.', enough to label the loss axis.
  void text(int x, int y, const std::string& s, const unsigned char* c) {
    static const char* glyphs[11] = {"111101101101111", "010110010010111", "111001111100111", "111001111001111",
                                     "101101111001001", "111100111001111", "111100111101111", "111001001001001",
                                     "111101111101111", "111101111001111", "000000000000010"};
    for (char ch : s) {
      int g = ch == '.' ? 10 : ch - '0';
      if (g < 0 || g > 10) continue;
      for (int i = 0; i < 15; ++i)
        if (glyphs[g][i] == '1')
          for (int k = 0; k < 4; ++k) dot(x + (i % 3) * 2 + k % 2, y + (i / 3) * 2 + k / 2, c);
      x += 8;
    }
  }
};

}  // namespace

void write_loss_plot(const std::string& path, const std::vector<double>& train, const std::vector<double>& val) {
  static const unsigned char kAxis[3] = {60, 60, 60}, kBlue[3] = {31, 119, 180}, kOrange[3] = {255, 127, 14};
  Canvas cv;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* s : {&train, &val})
    for (double v : *s)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-6) hi = lo + 1e-6;
  const size_t n = std::max(train.size(), val.size());
  auto X = [&](size_t i) { return kLeft + (n > 1 ? double(i) / (n - 1) : 0.5) * (kW - kLeft - kRight); };
  auto Y = [&](double v) { return kTop + (hi - v) / (hi - lo) * (kH - kTop - kBottom); };
  cv.line(kLeft, kTop, kLeft, kH - kBottom, kAxis);
  cv.line(kLeft, kH - kBottom, kW - kRight, kH - kBottom, kAxis);
  char label[16];
  std::snprintf(label, sizeof label, "%.2f", hi);
  cv.text(4, kTop - 4, label, kAxis);
  std::snprintf(label, sizeof label, "%.2f", lo);
  cv.text(4, kH - kBottom - 6, label, kAxis);
  std::snprintf(label, sizeof label, "%zu", n);
  cv.text(kW - kRight - 12, kH - kBottom + 8, label, kAxis);
  cv.text(kLeft - 4, kH - kBottom + 8, "1", kAxis);
  for (auto [series, color] : {std::pair{&train, kBlue}, {&val, kOrange}})
    for (size_t i = 0; i < series->size(); ++i) {
      if (!std::isfinite((*series)[i])) continue;
      if (i > 0 && std::isfinite((*series)[i - 1]))
        cv.line(X(i - 1), Y((*series)[i - 1]), X(i), Y((*series)[i]), color);
      for (int d = -3; d <= 3; ++d) cv.line(X(i) + d, Y((*series)[i]) - 3, X(i) + d, Y((*series)[i]) + 2, color);
    }
#if !CAPTION_HAS_PNG
  throw InputError(path, "this build has no libpng: loss plot not written");
#else
  // Encoded in memory, then written like every output file (model/atomic_file.h).
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw InputError(path, "libpng failed to encode the loss plot");
  }
  png_set_write_fn(
      png, &bytes,
      [](png_structp p, png_bytep data, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(data), n);
      },
      [](png_structp) {});  // nothing to flush (null would install libpng's fflush of a FILE*)
  png_set_IHDR(png, info, kW, kH, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < kH; ++y) png_write_row(png, cv.rgb.data() + size_t(y) * kW * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  write_file_atomic(path, bytes);
#endif
}

}  // namespace caption::cli
