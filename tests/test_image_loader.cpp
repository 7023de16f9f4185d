// Image loading: formats and pixel conversions, squash and centre-crop geometry, one-line errors
// for bad files (refused before decoding where the header says enough), and the expansion of
// folders and @lists; large JPEGs decoded at a reduced size close to a full decode. Images are
// written with OpenCV into a scratch folder.
#include "model/image_loader.h"

#include <cmath>
#include <filesystem>

#include "tests/io_test_util.h"

#if CAPTION_HAS_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;
using test::write_bytes;

#if CAPTION_HAS_OPENCV

std::vector<uint8_t> load(const std::string& path, ResizeMode mode, int size, int64_t max_pixels = 100'000'000) {
  ImageOptions opt;
  opt.resize = mode;
  opt.image_size = size;
  opt.max_pixels = max_pixels;
  std::vector<uint8_t> out(size_t(size) * size * 3);
  load_image(path, opt, out.data());
  return out;
}

// Every pixel within tol of (r, g, b).
::testing::AssertionResult all_pixels(const std::vector<uint8_t>& img, int r, int g, int b, int tol) {
  for (size_t i = 0; i < img.size(); i += 3)
    if (std::abs(img[i] - r) > tol || std::abs(img[i + 1] - g) > tol || std::abs(img[i + 2] - b) > tol)
      return ::testing::AssertionFailure() << "pixel " << i / 3 << " is (" << int(img[i]) << "," << int(img[i + 1])
                                           << "," << int(img[i + 2]) << "), expected (" << r << "," << g << "," << b
                                           << ") +-" << tol;
  return ::testing::AssertionSuccess();
}

std::string encode(const std::string& ext, const cv::Mat& img, const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, img, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = char(v >> (24 - 8 * i));
}
void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = char(v >> (8 * i));
}

TEST(ImageLoader, ConstantColourInEveryFormat) {
  ScratchDir dir;
  struct Case {
    std::string name;
    cv::Mat img;
    int r, g, b, tol;
    std::vector<int> params;
  };
  std::vector<Case> cases = {
      {"rgb.png", cv::Mat(11, 17, CV_8UC3, cv::Scalar(30, 100, 200)), 200, 100, 30, 0},   // OpenCV is BGR
      {"rgba.png", cv::Mat(11, 17, CV_8UC4, cv::Scalar(30, 100, 200, 0)), 200, 100, 30, 0},  // alpha dropped
      // 16-bit: x/257 rounded: 257*30+129 -> 30.502 -> 31, 257*100+128 -> 100.498 -> 100
      {"deep.png", cv::Mat(11, 17, CV_16UC3, cv::Scalar(257 * 30 + 129, 257 * 100 + 128, 65535)), 255, 100, 31, 0},
      {"grey.png", cv::Mat(11, 17, CV_8UC1, cv::Scalar(77)), 77, 77, 77, 0},
      {"grey16.png", cv::Mat(11, 17, CV_16UC1, cv::Scalar(257 * 77)), 77, 77, 77, 0},
      {"photo.jpg", cv::Mat(11, 17, CV_8UC3, cv::Scalar(30, 100, 200)), 200, 100, 30, 2,
       {cv::IMWRITE_JPEG_QUALITY, 95}},
      {"grey.jpg", cv::Mat(11, 17, CV_8UC1, cv::Scalar(77)), 77, 77, 77, 1},
      {"pic.bmp", cv::Mat(11, 17, CV_8UC3, cv::Scalar(30, 100, 200)), 200, 100, 30, 0},
      {"one.png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(5, 6, 7)), 7, 6, 5, 0},
  };
  if (cv::haveImageWriter("x.webp"))
    cases.push_back({"pic.webp", cv::Mat(11, 17, CV_8UC3, cv::Scalar(30, 100, 200)), 200, 100, 30, 0,
                     {cv::IMWRITE_WEBP_QUALITY, 101}});  // above 100: lossless
  if (cv::haveImageWriter("x.tiff"))
    cases.push_back({"pic.tiff", cv::Mat(11, 17, CV_8UC3, cv::Scalar(30, 100, 200)), 200, 100, 30, 0});
  for (const auto& c : cases) {
    ASSERT_TRUE(cv::imwrite(dir.path(c.name), c.img, c.params)) << c.name;
    for (ResizeMode mode : {ResizeMode::Squash, ResizeMode::CenterCrop})
      EXPECT_TRUE(all_pixels(load(dir.path(c.name), mode, 32), c.r, c.g, c.b, c.tol)) << c.name;
  }
}

TEST(ImageLoader, CmykJpeg) {
  // Pillow reads this fixture as (215, 46, 0); OpenCV's CMYK formula differs by a few levels.
  auto img = load(std::string(CAPTION_TEST_DATA) + "/golden/cmyk_orange.jpg", ResizeMode::Squash, 8);
  EXPECT_TRUE(all_pixels(img, 215, 46, 0, 8));
}

TEST(ImageLoader, SquashStretchesTheWholeImage) {
  ScratchDir dir;
  cv::Mat img(20, 40, CV_8UC3, cv::Scalar(255, 0, 0));           // blue
  img(cv::Rect(0, 0, 20, 20)).setTo(cv::Scalar(0, 0, 255));        // left half red
  ASSERT_TRUE(cv::imwrite(dir.path("halves.png"), img));
  auto out = load(dir.path("halves.png"), ResizeMode::Squash, 32);
  // Output column x samples source x' = (x + 0.5) * 40/32 - 0.5 between its two neighbours:
  // column 15 (x' = 18.875) sees only red, column 16 (x' = 20.125) only blue.
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const uint8_t* p = &out[(y * 32 + x) * 3];
      if (x < 16) ASSERT_TRUE(p[0] == 255 && p[1] == 0 && p[2] == 0) << x << "," << y;
      else ASSERT_TRUE(p[0] == 0 && p[1] == 0 && p[2] == 255) << x << "," << y;
    }
}

TEST(ImageLoader, CenterCropKeepsTheMiddle) {
  ScratchDir dir;
  // Red quarter, green half, blue quarter. For size 32 the shorter side becomes
  // round(32 * 256/224) = 37, the longer int(37 * 80/40) = 74, the crop starts at x = 21: the
  // red part ends at 18.5 and the blue starts at 55.5, so only green remains. Squash keeps all.
  cv::Mat img(40, 80, CV_8UC3, cv::Scalar(0, 255, 0));
  img(cv::Rect(0, 0, 20, 40)).setTo(cv::Scalar(0, 0, 255));
  img(cv::Rect(60, 0, 20, 40)).setTo(cv::Scalar(255, 0, 0));
  ASSERT_TRUE(cv::imwrite(dir.path("thirds.png"), img));
  EXPECT_TRUE(all_pixels(load(dir.path("thirds.png"), ResizeMode::CenterCrop, 32), 0, 255, 0, 0));
  auto squash = load(dir.path("thirds.png"), ResizeMode::Squash, 32);
  EXPECT_EQ(squash[0], 255);                 // top-left red
  EXPECT_EQ(squash[(32 * 32 - 1) * 3 + 2], 255);  // bottom-right blue
}

TEST(ImageLoader, ShrinkingAveragesFineDetail) {
  ScratchDir dir;
  // 1-pixel black/white stripes shrunk 100 -> 32: each output pixel covers 3.125 columns, so a
  // filter that uses them all gives greys in [82, 173]; sampling 2 neighbours (INTER_LINEAR)
  // gives values near 0 and 255 (aliasing), unlike PIL's bilinear resize.
  cv::Mat stripes(100, 100, CV_8UC1, cv::Scalar(0));
  for (int x = 1; x < 100; x += 2) stripes.col(x).setTo(255);
  ASSERT_TRUE(cv::imwrite(dir.path("stripes.png"), stripes));
  for (ResizeMode mode : {ResizeMode::Squash, ResizeMode::CenterCrop}) {
    auto out = load(dir.path("stripes.png"), mode, 32);
    EXPECT_TRUE(all_pixels(out, 128, 128, 128, 50));
  }
}

TEST(ImageLoader, FlickrOriginalsMatchTheirSquashedCopies) {
  // The shared data set's 224x224 images were squashed from the originals by another pipeline
  // (PIL-like resize, then JPEG q85): the mean absolute difference is at most 6.7 levels (with
  // INTER_LINEAR's aliasing, up to 9.3). A channel swap, a crop instead of a squash, or a
  // rotation would give tens.
  const std::string originals = test::shared_data("flickr8k/originals");
  const std::string squashed = test::shared_data("flickr8k/images");
  if (originals.empty() || squashed.empty()) GTEST_SKIP() << "no shared Flickr8k data";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(originals)) {
    auto a = load(e.path().string(), ResizeMode::Squash, 224);
    auto b = load(squashed + "/" + e.path().filename().string(), ResizeMode::Squash, 224);
    double sum = 0;
    for (size_t i = 0; i < a.size(); ++i) sum += std::abs(a[i] - b[i]);
    EXPECT_LT(sum / a.size(), 8.0) << e.path();
    ++n;
  }
  EXPECT_GT(n, 0);
}

// An image whose pixel (x, y) is (x % 256, y, x / 256) in RGB, so positions can be read back.
cv::Mat coordinates(int w, int h) {
  cv::Mat img(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x / 256), uchar(y), uchar(x % 256));
  return img;
}

TEST(ImageLoader, CenterCropOrigin) {
  ScratchDir dir;
  // 512x256 at size 224: the shorter side is already 256, so no resampling; the crop is
  // x 144..367, y 16..239.
  ASSERT_TRUE(cv::imwrite(dir.path("wide.png"), coordinates(512, 256)));
  auto out = load(dir.path("wide.png"), ResizeMode::CenterCrop, 224);
  for (int y = 0; y < 224; ++y)
    for (int x = 0; x < 224; ++x) {
      const uint8_t* p = &out[(y * 224 + x) * 3];
      ASSERT_EQ(p[0], (x + 144) % 256) << x << "," << y;
      ASSERT_EQ(p[1], y + 16) << x << "," << y;
      ASSERT_EQ(p[2], (x + 144) / 256) << x << "," << y;
    }
  // Odd margins round half to even, as torchvision's round(): 35/2 -> 18, 33/2 -> 16.
  for (auto [h, top] : {std::pair{259, 18}, std::pair{257, 16}}) {
    ASSERT_TRUE(cv::imwrite(dir.path("tall.png"), coordinates(256, h)));
    auto tall = load(dir.path("tall.png"), ResizeMode::CenterCrop, 224);
    EXPECT_EQ(tall[1], top) << h;  // G of the top-left pixel = its source row
    EXPECT_EQ(tall[0], 16) << h;   // R = source column: (256 - 224) / 2
  }
}

// The network input of a decode at full size, resized as load_image resizes (area filter when
// shrinking; squash, or the centre crop of a 224 * 256/224 shorter side).
std::vector<uint8_t> full_decode(const std::string& bytes, ResizeMode mode) {
  cv::Mat img = cv::imdecode(cv::Mat(1, int(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
                             cv::IMREAD_UNCHANGED), rgb, out;
  if (img.channels() == 1) cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB);
  else cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB);
  if (mode == ResizeMode::Squash) {
    cv::resize(rgb, out, cv::Size(224, 224), 0, 0, cv::INTER_AREA);
  } else {
    const int nw = 256 * rgb.cols / rgb.rows;  // landscape: the height becomes 256
    cv::Mat resized;
    cv::resize(rgb, resized, cv::Size(nw, 256), 0, 0, cv::INTER_AREA);
    out = resized(cv::Rect(int(std::lrint((nw - 224) / 2.0)), 16, 224, 224)).clone();
  }
  return std::vector<uint8_t>(out.data, out.data + 224 * 224 * 3);
}

// Large JPEGs are decoded at 1/2-1/8 size in the DCT (twice the needed size or more): the input
// moves by a fraction of a grey level on average, the crop stays where it was, EXIF orientation
// stays ignored, and small JPEGs and PNGs (the other tests) decode at full size.
TEST(ImageLoader, LargeJpegsDecodeReducedNearlyAsAtFullSize) {
  ScratchDir dir;
  cv::Mat photo = coordinates(2400, 1800), noise(photo.size(), CV_8UC3);
  cv::GaussianBlur(photo, photo, cv::Size(0, 0), 3);  // smooth shading, wrapped ramps blurred
  cv::RNG(7).fill(noise, cv::RNG::NORMAL, 0, 12);  // film grain, the same in every run
  photo += noise;
  cv::Mat grey;
  cv::cvtColor(photo, grey, cv::COLOR_BGR2GRAY);
  for (const auto& [name, img] : {std::pair{"photo.jpg", photo}, std::pair{"grey.jpg", grey}})
    for (ResizeMode mode : {ResizeMode::Squash, ResizeMode::CenterCrop}) {
      SCOPED_TRACE(std::string(name) + (mode == ResizeMode::Squash ? " squash" : " centre-crop"));
      // An EXIF orientation of 6 (rotate 90 degrees) after SOI: ignored here as in PIL and Keras.
      const std::string exif("\xFF\xE1\x00\x22" "Exif\0\0" "MM\x00\x2A\x00\x00\x00\x08" "\x00\x01"
                             "\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" "\x00\x00\x00\x00",
                             36);
      std::string bytes = encode(".jpg", img, {cv::IMWRITE_JPEG_QUALITY, 92});
      bytes.insert(2, exif);
      write_bytes(dir.path(name), bytes);
      const auto got = load(dir.path(name), mode, 224), want = full_decode(bytes, mode);
      double sum = 0;
      int worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        sum += std::abs(got[i] - want[i]);
        worst = std::max(worst, std::abs(got[i] - want[i]));
      }
      EXPECT_NE(got, want) << "decoded at full size: the reduced decode did not run";
      EXPECT_LT(sum / got.size(), 0.6);  // 0.21-0.42 seen
      EXPECT_LE(worst, 16);              // 2-7 seen
    }
}

TEST(ImageLoader, BadFilesAreOneLineInputErrors) {
  ScratchDir dir;
  auto run = [](const std::string& p) { return [p] { load(p, ResizeMode::Squash, 32); }; };
  cv::Mat noise(64, 64, CV_8UC3);
  cv::randu(noise, 0, 256);

  EXPECT_TRUE(throws_input_error(run(dir.path("missing.jpg")), {dir.path("missing.jpg"), "No such file"}));
  write_bytes(dir.path("empty.jpg"), "");
  EXPECT_TRUE(throws_input_error(run(dir.path("empty.jpg")), {dir.path("empty.jpg"), "empty"}));
  // Noise makes the entropy-coded data full of stuffed 0xFF bytes; progressive files have
  // several scans, restart intervals add markers inside a scan. Whole files load, halves don't.
  for (const auto& params : std::vector<std::vector<int>>{
           {}, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}, {cv::IMWRITE_JPEG_RST_INTERVAL, 1}}) {
    std::string whole = encode(".jpg", noise, params);
    write_bytes(dir.path("whole.jpg"), whole);
    EXPECT_NO_THROW(run(dir.path("whole.jpg"))());
    write_bytes(dir.path("cut.jpg"), whole.substr(0, whole.size() / 2));
    EXPECT_TRUE(throws_input_error(run(dir.path("cut.jpg")), {dir.path("cut.jpg"), "truncated JPEG"}));
  }
  std::string jpeg = encode(".jpg", noise);
  write_bytes(dir.path("no_eoi.jpg"), jpeg.substr(0, jpeg.size() - 2));  // only the end marker missing
  EXPECT_TRUE(throws_input_error(run(dir.path("no_eoi.jpg")), {dir.path("no_eoi.jpg"), "truncated JPEG"}));
  std::string png = encode(".png", noise);
  write_bytes(dir.path("cut.png"), png.substr(0, png.size() / 2));
  EXPECT_TRUE(throws_input_error(run(dir.path("cut.png")), {dir.path("cut.png"), "PNG"}));
  write_bytes(dir.path("notes.jpg"), "these are words, not pixels\n");
  EXPECT_TRUE(throws_input_error(run(dir.path("notes.jpg")), {dir.path("notes.jpg"), "not an image"}));
  std::filesystem::create_directory(dir.path("folder.jpg"));
  EXPECT_TRUE(throws_input_error(run(dir.path("folder.jpg")), {dir.path("folder.jpg"), "directory"}));
  // The whole file is fine with its own data appended after the end marker (as some cameras do).
  write_bytes(dir.path("trailer.jpg"), jpeg + "trailing bytes");
  EXPECT_NO_THROW(run(dir.path("trailer.jpg"))());
}

TEST(ImageLoader, TooManyPixelsRefusedFromTheHeader) {
  ScratchDir dir;
  cv::Mat small(8, 8, CV_8UC3, cv::Scalar(1, 2, 3));
  // Small files whose headers claim 20000x20000 (4e8 pixels, above the default 1e8): the
  // refusal must come from the header, before any decoder allocates 1.2 GB.
  std::string png = encode(".png", small);
  put_be32(png, 16, 20000), put_be32(png, 20, 20000);  // IHDR width, height
  std::string bmp = encode(".bmp", small);
  put_le32(bmp, 18, 20000), put_le32(bmp, 22, 20000);
  std::string jpeg = encode(".jpg", small);
  size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 7] = char(20000 >> 8), jpeg[sof + 6] = jpeg[sof + 8] = char(20000 & 0xFF);
  std::string webp("RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0", 24);  // canvas size - 1, 24-bit LE
  for (int i = 0; i < 2; ++i) webp += {char(19999 & 0xFF), char(19999 >> 8), '\0'};
  std::string tiff("II*\0\x08\0\0\0\x02\0", 10);  // little-endian, IFD at 8 with 2 entries
  for (uint16_t tag : {256, 257}) {
    std::string e(12, '\0');
    e[0] = char(tag & 0xFF), e[1] = char(tag >> 8), e[2] = 4, e[4] = 1;  // LONG, count 1
    put_le32(e, 8, 20000);
    tiff += e;
  }
  tiff += std::string(4, '\0');
  using Named = std::pair<std::string, std::string>;
  for (const auto& [name, bytes] : {Named{"big.png", png}, Named{"big.bmp", bmp}, Named{"big.jpg", jpeg},
                                    Named{"big.webp", webp}, Named{"big.tif", tiff}}) {
    const std::string path = dir.path(name);
    write_bytes(path, bytes);
    EXPECT_TRUE(throws_input_error([&] { load(path, ResizeMode::Squash, 32); }, {path, "20000x20000", "limit"}))
        << name;
  }
  // A 1x400 strip centre-cropped at 224 would be resized to 256x102400 (26M pixels).
  ASSERT_TRUE(cv::imwrite(dir.path("strip.png"), cv::Mat(400, 1, CV_8UC3, cv::Scalar(0, 0, 0))));
  EXPECT_NO_THROW(load(dir.path("strip.png"), ResizeMode::Squash, 224, 30'000'000));
  EXPECT_TRUE(throws_input_error([&] { load(dir.path("strip.png"), ResizeMode::CenterCrop, 224, 20'000'000); },
                                 {dir.path("strip.png"), "1x400", "elongated"}));
  // Bytes that are no marker before the frame header (libjpeg skips them with a warning): the
  // size behind them, 55312x10239, is still read and refused (found by the image fuzzer, where
  // decoding it took 2 GB and 8 s).
  const std::string garbage = std::string(CAPTION_TEST_DATA) + "/fuzz/image/oom-garbage-before-sof.jpg";
  EXPECT_TRUE(throws_input_error([&] { load(garbage, ResizeMode::Squash, 32); }, {garbage, "55312x10239", "limit"}));
  // Formats whose header is not checked here (PPM claims any size in a few bytes) are refused.
  write_bytes(dir.path("huge.ppm"), "P6\n60000 60000\n255\n");
  EXPECT_TRUE(throws_input_error([&] { load(dir.path("huge.ppm"), ResizeMode::Squash, 32); },
                                 {dir.path("huge.ppm"), "unrecognised format"}));
  // The limit is the caller's: 10x10 passes at 100 pixels and fails at 99.
  ASSERT_TRUE(cv::imwrite(dir.path("ten.png"), cv::Mat(10, 10, CV_8UC3, cv::Scalar(0, 0, 0))));
  EXPECT_NO_THROW(load(dir.path("ten.png"), ResizeMode::Squash, 32, 100));
  EXPECT_TRUE(throws_input_error([&] { load(dir.path("ten.png"), ResizeMode::Squash, 32, 99); }, {"10x10", "99"}));
}

#else

TEST(ImageLoader, BuildWithoutOpenCvSaysSo) {
  EXPECT_FALSE(image_support_available());
  uint8_t px[3];
  EXPECT_TRUE(throws_input_error([&] { load_image("a.jpg", ImageOptions{}, px); }, {"a.jpg", "no image support"}));
  GTEST_SKIP() << "built without OpenCV: decoding tests skipped";
}

#endif  // CAPTION_HAS_OPENCV

TEST(ImageLoader, ExpandFoldersAndLists) {
  ScratchDir dir;
  namespace fs = std::filesystem;
  fs::create_directories(dir.path("root/sub/deep"));
  fs::create_directories(dir.path("other"));
  for (auto f : {"root/b.JPG", "root/a.png", "root/sub/c.jpeg", "root/sub/notes.txt", "root/sub/deep/d.TIFF",
                 "root/sub/deep/e.webp", "other/x.bmp"})
    write_bytes(dir.path(f), "x");
  fs::create_directory_symlink(dir.path("root"), dir.path("root/sub/loop"));  // a cycle
  write_bytes(dir.path("list.txt"), "root/a.png\n\n  other \r\n" + dir.path("root/sub/c.jpeg") + "\n");

  auto got = expand_image_inputs({dir.path("root"), "@" + dir.path("list.txt"), dir.path("root/sub/notes.txt")});
  std::vector<std::string> want = {
      dir.path("root/a.png"), dir.path("root/b.JPG"), dir.path("root/sub/c.jpeg"), dir.path("root/sub/deep/d.TIFF"),
      dir.path("root/sub/deep/e.webp"),
      dir.path("root/a.png"), dir.path("other/x.bmp"), dir.path("root/sub/c.jpeg"),  // the list, in its order
      dir.path("root/sub/notes.txt"),                                                 // files as given
  };
  EXPECT_EQ(got, want);

  EXPECT_TRUE(throws_input_error([&] { expand_image_inputs({dir.path("nope")}); }, {dir.path("nope"), "no such"}));
  // A missing list entry is kept: loading it fails later, reported and skipped like any bad image.
  write_bytes(dir.path("gone_list.txt"), "root/a.png\n\nroot/gone.jpg\n");
  EXPECT_EQ(expand_image_inputs({"@" + dir.path("gone_list.txt")}),
            (std::vector<std::string>{dir.path("root/a.png"), dir.path("root/gone.jpg")}));
  EXPECT_TRUE(throws_input_error([&] { expand_image_inputs({"@" + dir.path("no_list.txt")}); },
                                 {dir.path("no_list.txt")}));
}

}  // namespace
}  // namespace caption
