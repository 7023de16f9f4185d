// The bad-input corpus (tests/data/bad, each file listed in its README.md) through the real
// `caption` binary. Alone, a bad input must end the run with a non-zero status and one line
// naming the file and the problem; among good images it must be a warning while the others are
// still captioned and written; never a crash, a hang or a partial output file. What git cannot
// hold (a folder named like an image, a symlink loop, a FIFO) is made here at run time.
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/features.h"
#include "model/image_loader.h"
#include "model/read_file.h"
#include "tests/cli_test_util.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using test::ScratchDir;
using test::kModel;

const std::string kBad = std::string(CAPTION_TEST_DATA) + "/bad/";
const std::string kPhoto = std::string(CAPTION_SOURCE_DIR) + "/examples/1167669558_87a8a467d6.jpg";

// Each run is stopped after a minute: a hang shows as status 124 and fails the test.
CliRun run(const std::string& args) {
  CliRun r = test::run_cli(args + " --device cpu", 60);
  EXPECT_NE(r.status, 124) << "timed out (a hang?): caption " << args;
  return r;
}

std::string listing(const fs::path& dir) {
  std::string s;
  for (const auto& e : fs::directory_iterator(dir)) s += " " + e.path().filename().string();
  return s.empty() ? " (empty)" : s;
}

// A refused run: non-zero status, one line naming `file` and `problem`, and nothing written to
// `out_dir` (no output file, no temporary left behind).
void expect_refused(const CliRun& r, const std::string& file, const std::string& problem, const fs::path& out_dir) {
  test::expect_one_line_error(r, file);
  EXPECT_NE(r.output.find(problem), std::string::npos) << "expected '" << problem << "' in: " << r.output;
  EXPECT_TRUE(fs::is_empty(out_dir)) << "left in the output folder:" << listing(out_dir);
}

// A line of `output` that says "warning" and names both `file` and `problem`.
::testing::AssertionResult warned(const std::string& output, const std::string& file, const std::string& problem) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.find("warning") != std::string::npos && line.find(file) != std::string::npos &&
        line.find(problem) != std::string::npos)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no warning naming " << file << " and '" << problem << "' in:\n" << output;
}

// describe's JSON lines as image name -> caption; every line must parse.
std::map<std::string, std::string> read_captions_jsonl(const std::string& path) {
  std::map<std::string, std::string> out;
  std::istringstream in(test::read_bytes(path));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    out[j.at("image").get<std::string>()] = j.at("caption").get<std::string>();
  }
  return out;
}

// A test name from a file name: "huge_header.png" -> "huge_header_png".
std::string case_name(std::string file) {
  for (char& c : file)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return file;
}

// ---- images ----

struct BadImage {
  std::string name, problem;
  bool is_folder;  // a folder named like an image: in a batch it is walked, not warned about
};

void PrintTo(const BadImage& b, std::ostream* os) { *os << b.name; }

const std::vector<BadImage> kBadImages = {
    {"empty.jpg", "empty file", false},
    {"truncated.jpg", "truncated JPEG", false},
    {"bad_huffman.jpg", "corrupt", false},
    {"not_an_image.jpg", "not an image", false},
    {"huge_header.png", "20000x20000, above the limit", false},
    {"huge_header.jpg", "20000x20000, above the limit", false},
    {"folder.jpg", "no images found", true},
    {"loop.jpg", "symbolic links", false},
    {"fifo.jpg", "not a regular file", false},
};

// The corpus's refused images in `dir`, and the cases made at run time.
void make_bad_images(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kBad + "images")) fs::copy_file(e.path(), dir / e.path().filename());
  fs::create_directory(dir / "folder.jpg");
  fs::create_symlink("loop.jpg", dir / "loop.jpg");  // resolves to itself
  ASSERT_EQ(::mkfifo((dir / "fifo.jpg").c_str(), 0600), 0);  // opening it to read would wait for a writer
}

class BadImageAlone : public ::testing::TestWithParam<BadImage> {};

TEST_P(BadImageAlone, OneLineErrorAndNoOutput) {
  if (!image_support_available()) GTEST_SKIP() << "built without OpenCV";
  ScratchDir t;
  ASSERT_NO_FATAL_FAILURE(make_bad_images(t.dir() / "in"));
  fs::create_directory(t.path("out"));
  const std::string file = t.path("in/" + GetParam().name);
  expect_refused(run("describe " + file + " --output " + t.path("out/captions.jsonl")), file, GetParam().problem,
                 t.path("out"));
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadImageAlone, ::testing::ValuesIn(kBadImages),
                         [](const auto& info) { return case_name(info.param.name); });

TEST(BadInputs, BatchWritesTheGoodImagesAndWarnsAboutEachBadOne) {
  if (!image_support_available()) GTEST_SKIP() << "built without OpenCV";
  ScratchDir t;
  const fs::path in = t.dir() / "in", out = t.dir() / "out";
  ASSERT_NO_FATAL_FAILURE(make_bad_images(in));
  fs::copy_file(kBad + "unusual/grey.jpg", in / "grey.jpg");
  fs::copy_file(kPhoto, in / "photo.jpg");
  fs::create_directory(out);
  const std::set<std::string> good = {"grey.jpg", "photo.jpg"};

  CliRun r = run("describe " + in.string() + " --output " + (out / "captions.jsonl").string());
  EXPECT_EQ(r.status, 2) << r.output;  // some images failed
  for (const auto& b : kBadImages)
    if (!b.is_folder) EXPECT_TRUE(warned(r.output, (in / b.name).string(), b.problem));
  auto captions = read_captions_jsonl((out / "captions.jsonl").string());
  std::set<std::string> names;
  for (const auto& [image, caption] : captions) {
    names.insert(image);
    EXPECT_FALSE(caption.empty()) << image;
  }
  EXPECT_EQ(names, good);

  r = run("features --model " + kModel + " " + in.string() + " --output " + (out / "features.safetensors").string());
  EXPECT_EQ(r.status, 2) << r.output;
  for (const auto& b : kBadImages)
    if (!b.is_folder) EXPECT_TRUE(warned(r.output, (in / b.name).string(), b.problem));
  ASSERT_TRUE(fs::exists(out / "features.safetensors")) << r.output;
  FeatureTable f = read_features((out / "features.safetensors").string());
  EXPECT_EQ(std::set<std::string>(f.images.begin(), f.images.end()), good);
  EXPECT_EQ(f.images.size(), good.size());
  EXPECT_EQ(f.dim, 1024);
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 2)  // no temporaries
      << listing(out);
}

TEST(BadInputs, UnusualButValidImagesAreCaptioned) {
  if (!image_support_available()) GTEST_SKIP() << "built without OpenCV";
  ScratchDir t;
  CliRun r = run("describe " + kBad + "unusual --output " + t.path("captions.jsonl"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
  auto captions = read_captions_jsonl(t.path("captions.jsonl"));
  std::set<std::string> names;
  for (const auto& [image, caption] : captions) {
    names.insert(image);
    EXPECT_FALSE(caption.empty()) << image;
  }
  EXPECT_EQ(names, (std::set<std::string>{"alpha.png", "cmyk.jpg", "grey.jpg", "one_pixel.png", "rgb16.png"}));
}

// Linux file names are bytes: one that is not UTF-8 cannot go into JSON or a safetensors header
// as it is. However it is handled (escaped or skipped with a warning), the other images are
// still captioned and every output line is valid JSON.
TEST(BadInputs, NonUtf8FileNameDoesNotSinkTheBatch) {
  if (!image_support_available()) GTEST_SKIP() << "built without OpenCV";
  ScratchDir t;
  const fs::path in = t.dir() / "in";
  fs::create_directory(in);
  fs::copy_file(kPhoto, in / "caf\xe9.jpg");
  fs::copy_file(kBad + "unusual/grey.jpg", in / "grey.jpg");
  CliRun r = run("describe " + in.string() + " --output " + t.path("captions.jsonl"));
  EXPECT_TRUE(r.status == 0 || r.status == 2) << r.status << ": " << r.output;
  EXPECT_TRUE(read_captions_jsonl(t.path("captions.jsonl")).count("grey.jpg")) << r.output;
  r = run("features --model " + kModel + " " + in.string() + " --output " + t.path("features.safetensors"));
  EXPECT_TRUE(r.status == 0 || r.status == 2) << r.status << ": " << r.output;
  ASSERT_TRUE(fs::exists(t.path("features.safetensors"))) << r.output;
  EXPECT_TRUE(read_features(t.path("features.safetensors")).find("grey.jpg")) << r.output;
}

// ---- features files, model files, caption files ----

// Two 1024-d features (the bundled model's size) for img0.jpg and img1.jpg.
std::string write_good_features(const ScratchDir& t) {
  FeatureTable f;
  f.dim = 1024;
  f.images = {"img0.jpg", "img1.jpg"};
  f.data.assign(2 * 1024, 0.1f);
  f.reindex();
  write_features(t.path("good.safetensors"), f);
  return t.path("good.safetensors");
}

struct BadFile {
  std::string file, problem;
};
void PrintTo(const BadFile& b, std::ostream* os) { *os << b.file; }

class BadFeaturesFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadFeaturesFile, DescribeAndScoreRefuseIt) {
  ScratchDir t;
  fs::create_directory(t.path("out"));
  const std::string file = kBad + "safetensors/" + GetParam().file;
  expect_refused(run("describe --model " + kModel + " --features " + file + " --output " + t.path("out/c.jsonl")),
                 file, GetParam().problem, t.path("out"));
  test::write_bytes(t.path("captions.txt"), "a.jpg#0\tA dog runs .\nb.jpg#0\tA man rides a bike .\n");
  expect_refused(run("score --model " + kModel + " --features " + file + " --captions " + t.path("captions.txt")),
                 file, GetParam().problem, t.path("out"));
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadFeaturesFile,
                         ::testing::Values(BadFile{"truncated_payload.safetensors", "run past the data"},
                                           BadFile{"out_of_range_offsets.safetensors", "run past the data"},
                                           BadFile{"overlapping_offsets.safetensors", "overlap"},
                                           BadFile{"header_too_long.safetensors", "larger than the file"},
                                           BadFile{"wrong_dtype.safetensors", "unsupported dtype 'I64'"},
                                           BadFile{"wrong_shape.safetensors", "1-D"},
                                           BadFile{"duplicate_names.safetensors", "duplicate tensor name 'a.jpg'"},
                                           BadFile{"non_finite.safetensors", "tensor 'b.jpg': non-finite value nan"},
                                           BadFile{"dim8.safetensors", "features are 8-d"}),
                         [](const auto& info) { return case_name(info.param.file); });

struct BadModelFile {
  std::string role, file, problem;  // role: the model directory's file it replaces
};
void PrintTo(const BadModelFile& b, std::ostream* os) { *os << b.file << " as " << b.role; }

class BadModelDir : public ::testing::TestWithParam<BadModelFile> {};

TEST_P(BadModelDir, DescribeRefusesIt) {
  ScratchDir t;
  const fs::path m = t.dir() / "model";
  fs::create_directory(m);
  fs::copy_file(kModel + "/config.json", m / "config.json");
  fs::copy_file(kModel + "/vocab.txt", m / "vocab.txt");
  for (auto w : {"decoder.safetensors", "encoder.safetensors"}) fs::create_symlink(kModel + "/" + w, m / w);
  fs::remove(m / GetParam().role);
  fs::copy_file(kBad + "model/" + GetParam().file, m / GetParam().role);
  fs::create_directory(t.path("out"));
  expect_refused(run("describe --model " + m.string() + " --features " + write_good_features(t) + " --output " +
                     t.path("out/c.jsonl")),
                 (m / GetParam().role).string(), GetParam().problem, t.path("out"));
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, BadModelDir,
    ::testing::Values(BadModelFile{"config.json", "config_malformed.json", "not valid JSON"},
                      BadModelFile{"config.json", "config_missing_key.json", "decoder.feature_dim: missing"},
                      BadModelFile{"vocab.txt", "vocab_duplicates.txt", "line 8: duplicate token 'dog'"},
                      BadModelFile{"vocab.txt", "vocab_non_utf8.txt", "line 6: token is not valid UTF-8"},
                      BadModelFile{"decoder.safetensors", "decoder_wrong_shapes.safetensors", "has shape [1]"}),
    [](const auto& info) { return case_name(info.param.file); });

class BadCaptionsFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadCaptionsFile, TrainAndScoreRefuseIt) {
  ScratchDir t;
  const std::string file = kBad + "captions/" + GetParam().file;
  FeatureTable f;
  f.dim = 8;
  f.images = {"img0.jpg", "img1.jpg"};
  f.data.assign(16, 0.5f);
  f.reindex();
  write_features(t.path("f8.safetensors"), f);
  test::write_bytes(t.path("train.txt"), "img0.jpg\n");
  test::write_bytes(t.path("val.txt"), "img1.jpg\n");
  fs::create_directory(t.path("out"));
  expect_refused(run("train --captions " + file + " --features " + t.path("f8.safetensors") + " --train-list " +
                     t.path("train.txt") + " --val-list " + t.path("val.txt") +
                     " --min-count 1 --batch 4 --epochs 1 --out " + t.path("out/model")),
                 file, GetParam().problem, t.path("out"));
  expect_refused(run("score --model " + kModel + " --features " + write_good_features(t) + " --captions " + file),
                 file, GetParam().problem, t.path("out"));
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadCaptionsFile,
                         ::testing::Values(BadFile{"non_utf8.txt", "line 2: not valid UTF-8"},
                                           BadFile{"empty_caption.txt", "line 2: empty caption"},
                                           BadFile{"missing_tab.txt", "line 2: missing tab"}),
                         [](const auto& info) { return case_name(info.param.file); });

// The check behind the non-UTF-8 cases: what JSON writers reject must be rejected.
TEST(BadInputs, Utf8Check) {
  for (std::string ok : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\x95", "\xf4\x8f\xbf\xbf"})
    EXPECT_TRUE(is_utf8(ok)) << ok;
  for (std::string bad : {"caf\xe9", "\xc3", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xf8\x88\x80\x80\x80", "\xe2\x82", "a\xc3(b"})
    EXPECT_FALSE(is_utf8(bad)) << bad;
}

}  // namespace
}  // namespace caption
