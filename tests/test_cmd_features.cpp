// `caption features` on image files with the bundled model's encoder: a job killed midway
// resumes from its partial file and ends with the same features file as an uninterrupted run,
// and memory does not grow with the number of images.
#include <filesystem>

#include "model/features.h"
#include "tests/cli_test_util.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::kExamples;
using test::kModel;
using test::have_images;

// Killed once at least two batches of one image are in: the partial file holds their rows
// (synced per batch) and the features file does not exist. --resume keeps those rows, encodes
// the rest (a line cut by the kill is dropped) and writes the same bytes as a run that was
// never stopped.
TEST(FeaturesCommand, ResumesAfterSigkill) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string base = "features --model " + kModel + " " + kExamples + " --device cpu --batch 1 --output ";
  const auto full = run_cli(base + dir.path("full.safetensors"));
  ASSERT_EQ(full.status, 0) << full.output;
  EXPECT_FALSE(fs::exists(dir.path("full.safetensors.partial")));
  const std::string out = dir.path("killed.safetensors"), partial = out + ".partial";
  ASSERT_TRUE(test::kill_cli_when(base + out, [&] { return test::lines(test::read_bytes(partial)).size() >= 2; }))
      << "the run ended before the kill";
  EXPECT_FALSE(fs::exists(out));
  std::string kept = test::read_bytes(partial);
  kept.resize(kept.rfind('\n') + 1);
  const size_t n = test::lines(kept).size();
  ASSERT_GE(n, 2u);
  test::write_bytes(partial, kept + "{\"image\": \"cut");
  test::expect_resume_completes(base + out, out, n, 6, dir.path("full.safetensors"));
}

// A partial file that is not this command's, or that holds rows of another length, is refused
// with one line naming it and the line; the partial file is left as it was.
TEST(FeaturesCommand, ResumeRefusesForeignPartialFiles) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string out = dir.path("f.safetensors"), partial = out + ".partial";
  const std::string cmd = "features --model " + kModel + " " + kExamples + " --device cpu --resume --output " + out;
  for (const std::string& bad : {std::string("{\"image\": \"a.jpg\", \"caption\": \"a dog\"}\n"),
                                 std::string("{\"image\": \"a.jpg\", \"path\": \"YS5qcGc=\", \"f32\": \"AAAAAA==\"}\n"),
                                 std::string("{\"image\": \"a.jpg\", \"path\": \"YS5qcGc=\", \"f32\": \"A*A=\"}\n")}) {
    SCOPED_TRACE(bad);
    test::write_bytes(partial, bad);
    test::expect_one_line_error(run_cli(cmd), "f.safetensors.partial: line 1");
    EXPECT_EQ(test::read_bytes(partial), bad);
    EXPECT_FALSE(fs::exists(out));
  }
}

// A batch larger than the memory limit allows is encoded in smaller pieces: the same features
// file, and a note says so.
TEST(FeaturesCommand, BatchOverTheMemoryLimitIsSplit) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string base = "features --model " + kModel + " " + kExamples + " --device cpu --batch 6 --output ";
  const auto whole = run_cli(base + dir.path("whole.safetensors"));
  ASSERT_EQ(whole.status, 0) << whole.output;
  EXPECT_EQ(whole.output.find("did not fit"), std::string::npos) << whole.output;
  // The encoder's F32 weights take ~34 MiB and each 224x224 image ~17 MiB of activations.
  const auto split = run_cli(base + dir.path("split.safetensors") + " --memory-limit 80");
  ASSERT_EQ(split.status, 0) << split.output;
  EXPECT_NE(split.output.find("did not fit in device memory; going on with encoder batches of"), std::string::npos)
      << split.output;
  EXPECT_EQ(test::read_bytes(dir.path("split.safetensors")), test::read_bytes(dir.path("whole.safetensors")));
}

// An image whose file name cannot key a features file ('__metadata__', which safetensors
// reserves) is reported and skipped; the others are written.
TEST(FeaturesCommand, ReservedFileNameIsSkipped) {
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  fs::copy_file(test::example_image(), dir.path("__metadata__"));
  fs::copy_file(test::example_image(), dir.path("a.jpg"));
  const std::string out = dir.path("f.safetensors");
  const auto r = run_cli("features --model " + kModel + " --device cpu " + dir.path("__metadata__") + " " +
                         dir.path("a.jpg") + " --output " + out);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("__metadata__: the file name '__metadata__' is reserved"), std::string::npos) << r.output;
  EXPECT_EQ(read_features(out).images, std::vector<std::string>{"a.jpg"});
}

// Rows live in the partial file, not in memory, and go into the features file one at a time:
// from a tenth of a 2000-image job to its end, resident memory grows by less than 4 MB (holding
// the 1800 1024-d rows of that stretch would take 7 MB). The images are links to one example
// under distinct names, encoded at 32x32 to keep the test short.
TEST(FeaturesCommand, MemoryStaysFlatOnLargeJobs) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's allocator keeps freed memory; resident size says nothing here";
#endif
  if (!have_images()) GTEST_SKIP() << "no image support in this build";
  test::ScratchDir dir;
  const std::string model = test::small_image_model(dir), image = test::example_image();
  fs::create_directory(dir.path("images"));
  for (int i = 0; i < 2000; ++i) fs::create_symlink(image, dir.path("images/") + std::to_string(100000 + i) + ".jpg");
  const std::string out = dir.path("f.safetensors");
  // A row's line is about 5.5 KB: 200 rows are past 1 MB.
  test::expect_flat_memory(
      "features --model " + model + " --device cpu --batch 50 --threads 2 " + dir.path("images") + " --output " + out,
      out, 1u << 20);
  EXPECT_EQ(read_features(out).images.size(), 2000u);
}

}  // namespace
}  // namespace caption
