// `caption describe` on image files, end to end with the bundled model: the output formats,
// the HTML gallery, --shard, and memory that stays flat however many images a job has.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/cli_test_util.h"
#include "runtime/device.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::kExamples;
using test::kModel;
using test::have_images;
using test::lines;

// A gallery's first lines, as its partial file holds them: the header (up to "<main>") and the
// lines of its first `images` images.
std::string gallery_head(const std::string& html, int images) {
  size_t cut = html.find("<main>\n") + 7;
  for (int i = 0; i < images; ++i) cut = html.find('\n', cut) + 1;
  return html.substr(0, cut);
}

std::string decode_base64(const std::string& s) {
  const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    acc = acc << 6 | uint32_t(digits.find(c));
    if ((bits += 6) >= 8) out += char(acc >> (bits -= 8) & 0xFF);
  }
  return out;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Describe, ImagesToJsonlAndGallery) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  auto r = run_cli("describe " + kExamples + " --output " + dir.path("out.jsonl") + " --html " + dir.path("g.html"));
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<fs::path> expected;
  for (const auto& e : fs::directory_iterator(kExamples))
    if (e.path().extension() == ".jpg") expected.push_back(e.path());
  std::sort(expected.begin(), expected.end());
  const auto out = lines(test::read_bytes(dir.path("out.jsonl")));
  ASSERT_EQ(out.size(), expected.size());
  const std::string html = test::read_bytes(dir.path("g.html"));
  EXPECT_EQ(occurrences(html, "<figure>"), expected.size());
  for (size_t i = 0; i < out.size(); ++i) {
    auto j = nlohmann::json::parse(out[i]);
    EXPECT_EQ(j["image"], expected[i].filename().string());
    EXPECT_EQ(fs::path(j["path"].get<std::string>()), expected[i]);
    const std::string caption = j["caption"];
    EXPECT_GE(std::count(caption.begin(), caption.end(), ' '), 2) << caption;
    std::string escaped;
    for (char c : caption) escaped += c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    EXPECT_NE(html.find("<figcaption>" + escaped), std::string::npos) << caption;
  }
  // Every thumbnail is an embedded JPEG no larger than 256 pixels.
  size_t at = html.find("base64,");
  ASSERT_NE(at, std::string::npos);
  const std::string jpeg = decode_base64(html.substr(at + 7, html.find('"', at) - at - 7));
  ASSERT_GT(jpeg.size(), 1000u);
  EXPECT_EQ(uint8_t(jpeg[0]), 0xFF);
  EXPECT_EQ(uint8_t(jpeg[1]), 0xD8);
  EXPECT_EQ(jpeg.substr(jpeg.size() - 2), "\xFF\xD9");
  // Standard output gets the same lines.
  r = run_cli("describe " + kExamples + " 2>/dev/null");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(lines(r.output), out);
}

// Shards partition the sorted input list: shard i holds inputs i, i+n, ... in order.
TEST(Describe, ShardsPartitionTheInputs) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  auto all = run_cli("describe " + kExamples + " --format csv 2>/dev/null");
  ASSERT_EQ(all.status, 0) << all.output;
  const auto full = lines(all.output);
  ASSERT_EQ(full.front(), "image,path,caption");
  const size_t n = 4;
  for (size_t i = 0; i < n; ++i) {
    auto r = run_cli("describe " + kExamples + " --format csv --shard " + std::to_string(i) + "/" + std::to_string(n) +
                     " --output " + dir.path("s.csv"));
    ASSERT_EQ(r.status, 0) << r.output;
    std::vector<std::string> want = {full.front()};
    for (size_t k = 1 + i; k < full.size(); k += n) want.push_back(full[k]);
    EXPECT_EQ(lines(test::read_bytes(dir.path("s.csv"))), want) << "shard " << i;
  }
  for (const char* bad : {"4/4", "1", "-1/2", "a/b", "0/0"}) {
    auto r = run_cli(std::string("describe ") + kExamples + " --shard " + bad);
    test::expect_one_line_error(r, "--shard");
  }
}

// A job killed midway leaves OUTPUT.partial (synced per batch) and no OUTPUT; --resume keeps
// its records and captions the rest, ending with the same file as an uninterrupted run.
TEST(Describe, ResumesAfterSigkill) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string base = "describe " + kExamples + " --device cpu --batch 1 --output ";
  ASSERT_EQ(run_cli(base + dir.path("full.jsonl")).status, 0);
  const std::string out = dir.path("killed.jsonl"), partial = out + ".partial";
  ASSERT_TRUE(test::kill_cli_when(base + out, [&] { return lines(test::read_bytes(partial)).size() >= 2; }))
      << "the run ended before the kill";
  EXPECT_FALSE(fs::exists(out));
  const size_t kept = lines(test::read_bytes(partial)).size();
  EXPECT_GE(kept, 2u);
  test::expect_resume_completes(base + out, out, kept, 6, dir.path("full.jsonl"));
}

// With --html the gallery grows in its own partial file, synced before the captions: a killed
// job resumes both, and ends with the same two files as an uninterrupted run. A gallery partial
// file that is missing or not a gallery is refused, naming it.
TEST(Describe, ResumesWithGalleryAfterSigkill) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string base = "describe " + kExamples + " --device cpu --batch 1";
  auto args = [&](const std::string& name) { return base + " --output " + dir.path(name + ".jsonl") + " --html " + dir.path(name + ".html"); };
  ASSERT_EQ(run_cli(args("full")).status, 0);
  const std::string partial = dir.path("killed.jsonl.partial");
  ASSERT_TRUE(test::kill_cli_when(args("killed"), [&] { return lines(test::read_bytes(partial)).size() >= 2; }))
      << "the run ended before the kill";
  EXPECT_FALSE(fs::exists(dir.path("killed.html")));
  ASSERT_TRUE(fs::exists(dir.path("killed.html.partial")));
  const size_t kept = lines(test::read_bytes(partial)).size();
  test::expect_resume_completes(args("killed"), dir.path("killed.jsonl"), kept, 6, dir.path("full.jsonl"));
  EXPECT_EQ(test::read_bytes(dir.path("killed.html")), test::read_bytes(dir.path("full.html")));
  EXPECT_FALSE(fs::exists(dir.path("killed.html.partial")));

  // A kill between the gallery's sync and the captions' leaves the gallery an image ahead: the
  // resumed job drops that image from the gallery and captions it again.
  const std::string html = test::read_bytes(dir.path("full.html"));
  test::write_bytes(dir.path("ahead.html.partial"), gallery_head(html, 3));
  const auto records = lines(test::read_bytes(dir.path("full.jsonl")));
  test::write_bytes(dir.path("ahead.jsonl.partial"), records[0] + "\n" + records[1] + "\n");
  test::expect_resume_completes(args("ahead"), dir.path("ahead.jsonl"), 2, 6, dir.path("full.jsonl"));
  EXPECT_EQ(test::read_bytes(dir.path("ahead.html")), html);

  // A gallery behind the captions (not of this job, or cut by hand) is refused, naming it.
  test::write_bytes(dir.path("behind.html.partial"), gallery_head(html, 1));
  test::write_bytes(dir.path("behind.jsonl.partial"), records[0] + "\n" + records[1] + "\n");
  test::expect_one_line_error(run_cli(args("behind") + " --resume"), "behind.html.partial: holds 1 images, the captions kept 2");

  const std::string one_record = records[0] + "\n";
  test::write_bytes(dir.path("m.jsonl.partial"), one_record);
  const auto missing = run_cli(args("m") + " --resume");
  test::expect_one_line_error(missing, "m.html.partial: missing or empty");
  EXPECT_EQ(missing.output.find("--resume continues"), std::string::npos) << missing.output;  // it just failed
  test::write_bytes(dir.path("m.html.partial"), "<html>\n");
  test::expect_one_line_error(run_cli(args("m") + " --resume"), "m.html.partial: not a partial gallery");
  EXPECT_EQ(test::read_bytes(dir.path("m.jsonl.partial")), one_record);
}

// A file name with a line break: the gallery keeps it on its image's one line, and a CSV record
// holding it spans lines inside quotes; both resume, a CSV record cut inside its quotes is
// captioned again, and the files end as an uninterrupted run's.
TEST(Describe, NamesWithLineBreaksResume) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  fs::create_directory(dir.path("in"));
  for (const std::string name : {"0\nb.jpg", "c.jpg"}) fs::copy_file(test::example_image(), dir.path("in/") + name);
  const std::string base = "describe " + dir.path("in") + " --device cpu --batch 1 --output ";
  auto args = [&](const std::string& name) {
    return base + dir.path(name + ".jsonl") + " --html " + dir.path(name + ".html");
  };
  ASSERT_EQ(run_cli(args("full")).status, 0);
  const std::string html = test::read_bytes(dir.path("full.html"));
  EXPECT_NE(html.find("0&#10;b.jpg"), std::string::npos);
  test::write_bytes(dir.path("r.html.partial"), gallery_head(html, 1));
  test::write_bytes(dir.path("r.jsonl.partial"), lines(test::read_bytes(dir.path("full.jsonl")))[0] + "\n");
  test::expect_resume_completes(args("r"), dir.path("r.jsonl"), 1, 2, dir.path("full.jsonl"));
  EXPECT_EQ(test::read_bytes(dir.path("r.html")), html);

  ASSERT_EQ(run_cli(base + dir.path("full.csv") + " --format csv").status, 0);
  // The header, the record in three lines (its name and path hold the break), c.jpg's.
  const auto rows = lines(test::read_bytes(dir.path("full.csv")));
  ASSERT_EQ(rows.size(), 5u);
  test::write_bytes(dir.path("whole.csv.partial"), rows[0] + "\n" + rows[1] + "\n" + rows[2] + "\n" + rows[3] + "\n");
  test::expect_resume_completes(base + dir.path("whole.csv") + " --format csv", dir.path("whole.csv"), 1, 2,
                                dir.path("full.csv"));
  test::write_bytes(dir.path("cut.csv.partial"), rows[0] + "\n" + rows[1] + "\n" + rows[2] + "\n");
  const auto cut = run_cli(base + dir.path("cut.csv") + " --format csv --resume");
  ASSERT_EQ(cut.status, 0) << cut.output;
  EXPECT_EQ(test::read_bytes(dir.path("cut.csv")), test::read_bytes(dir.path("full.csv")));
}

// JSONL records hold invalid UTF-8 in paths replaced, so two such names can read the same:
// a resumed job counts each kept record against one input, in order, and ends with the same
// file as an uninterrupted run (no image captioned twice, none left out).
TEST(Describe, ResumeWithPathsThatAreNotUtf8) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  fs::create_directory(dir.path("in"));
  for (const std::string name : {"a\xff.jpg", "a\xfe.jpg", "b.jpg"})
    fs::copy_file(test::example_image(), dir.path("in/") + name);
  const std::string base = "describe " + dir.path("in") + " --device cpu --batch 1 --output ";
  ASSERT_EQ(run_cli(base + dir.path("full.jsonl")).status, 0);
  const auto rows = lines(test::read_bytes(dir.path("full.jsonl")));
  ASSERT_EQ(rows.size(), 3u);
  const std::string out = dir.path("o.jsonl");
  test::write_bytes(out + ".partial", rows[0] + "\n");  // the first of the two look-alikes
  const auto r = run_cli(base + out + " --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming: 1 of 3"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_bytes(out), test::read_bytes(dir.path("full.jsonl")));
}

// A CSV partial file whose last line was cut: the complete records are kept, the rest redone.
TEST(Describe, ResumeKeepsCompleteCsvRecordsOnly) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  auto full = run_cli("describe " + kExamples + " --device cpu --format csv 2>/dev/null");
  ASSERT_EQ(full.status, 0);
  const auto rows = lines(full.output);
  ASSERT_EQ(rows.size(), 7u);
  test::write_bytes(dir.path("o.csv.partial"), rows[0] + "\n" + rows[1] + "\n" + rows[2] + "\n" + rows[3].substr(0, 20));
  auto r = run_cli("describe " + kExamples + " --device cpu --format csv --resume --output " + dir.path("o.csv"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming: 2 of 6"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_bytes(dir.path("o.csv")), full.output);
  // A partial file of another format is refused, naming it.
  test::write_bytes(dir.path("x.jsonl.partial"), rows[1] + "\n");
  test::expect_one_line_error(run_cli("describe " + kExamples + " --resume --output " + dir.path("x.jsonl")),
                              "x.jsonl.partial");
}

// A batch larger than the memory limit allows is encoded in smaller pieces: same captions,
// and a note says so.
TEST(Describe, BatchOverTheMemoryLimitIsSplit) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  auto whole = run_cli("describe " + kExamples + " --device cpu --batch 6 2>/dev/null");
  ASSERT_EQ(whole.status, 0) << whole.output;
  // The encoder's F32 weights take ~34 MiB and each 224x224 image ~17 MiB of activations.
  test::ScratchDir dir;
  auto split = run_cli("describe " + kExamples + " --device cpu --batch 6 --memory-limit 80 --output " + dir.path("o.jsonl"));
  ASSERT_EQ(split.status, 0) << split.output;
  EXPECT_NE(split.output.find("did not fit"), std::string::npos) << split.output;
  EXPECT_EQ(test::read_bytes(dir.path("o.jsonl")), whole.output);
}

// The CUDA options for FP32 (the encoder's layout and algorithm choice, the decoder's CUDA
// graphs) change how, not what: the same captions as the defaults; --bf16 runs. The CPU accepts
// and ignores them all.
TEST(Describe, ConvOptionsKeepCaptions) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  for (const std::string device : {"cpu", "cuda"}) {
    if (device == "cuda" && !cuda_available()) continue;
    const std::string base = "describe " + kExamples + " --device " + device + " --batch 4";
    auto plain = run_cli(base + " 2>/dev/null");
    ASSERT_EQ(plain.status, 0) << plain.output;
    auto other = run_cli(base + " --conv-layout nchw --conv-search timed --cuda-graphs" +
                         (device == "cpu" ? " --bf16" : "") + " 2>/dev/null");
    ASSERT_EQ(other.status, 0) << other.output;
    EXPECT_EQ(other.output, plain.output) << device;
    auto matmul = run_cli(base + " --conv-search matmul 2>/dev/null");  // convolutions by cuBLASLt
    ASSERT_EQ(matmul.status, 0) << matmul.output;
    EXPECT_EQ(matmul.output, plain.output) << device;
    if (device == "cuda") {  // bfloat16 features may change a word: the same images, in order
      auto bf16 = run_cli(base + " --bf16 2>/dev/null");
      ASSERT_EQ(bf16.status, 0) << bf16.output;
      const auto a = lines(plain.output), b = lines(bf16.output);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(nlohmann::json::parse(a[i])["image"], nlohmann::json::parse(b[i])["image"]);
    }
  }
  test::expect_one_line_error(run_cli("describe " + kExamples + " --conv-search fastest"), "--conv-search");
  test::expect_one_line_error(run_cli("describe " + kExamples + " --bf16 --tf32"), "--tf32");
}

// --max-pixels refuses images from their header: 224x224 is 50176 pixels.
TEST(Describe, MaxPixelsRefusesLargerImages) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  const std::string image = kExamples + "/3385593926_d3e9c21170.jpg";
  test::expect_one_line_error(run_cli("describe " + image + " --max-pixels 50175"), "above the limit of 50175 pixels");
  EXPECT_EQ(run_cli("describe " + image + " --max-pixels 50176").status, 0);
}

// The pipeline holds a bounded number of batches: from a tenth of a 2000-image job to its end,
// resident memory grows by less than 4 MB (holding the 1024-d features of the 1800 images of
// that stretch alone would take 7 MB). The images are one example repeated through an @list
// and encoded at 32x32 to keep the test short.
TEST(Describe, MemoryStaysFlatOnLargeJobs) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's allocator keeps freed memory; resident size says nothing here";
#endif
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string model = test::small_image_model(dir), image = test::example_image();
  std::string list;
  for (int i = 0; i < 2000; ++i) list += image + "\n";
  test::write_bytes(dir.path("list.txt"), list);
  const std::string out = dir.path("out.jsonl");
  const size_t line_bytes = lines(run_cli("describe --model " + model + " --device cpu " + image).output).front().size();
  test::expect_flat_memory(
      "describe --model " + model + " --device cpu --batch 50 --threads 2 @" + dir.path("list.txt") + " --output " + out,
      out, 200 * (line_bytes + 1));
  EXPECT_EQ(lines(test::read_bytes(out)).size(), 2000u);
}

}  // namespace
}  // namespace caption
