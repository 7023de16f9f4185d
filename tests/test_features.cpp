#include "model/features.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;

TEST(Features, RoundTripAndLookup) {
  ScratchDir dir;
  FeatureTable t{{"b.jpg", "a.jpg", "c.jpg"}, 2, {1, 2, 3, 4, 5, 6}};
  EXPECT_EQ(t.find("a.jpg"), std::optional<size_t>(1));  // hand-built, no index yet
  EXPECT_EQ(t.find("z.jpg"), std::nullopt);
  write_features(dir.path("f.safetensors"), t);
  FeatureTable r = read_features(dir.path("f.safetensors"));
  EXPECT_EQ(r.images, t.images);  // file order, not sorted
  EXPECT_EQ(r.dim, 2);
  EXPECT_EQ(r.data, t.data);
  EXPECT_EQ(r.index.size(), 3u);
  EXPECT_EQ(r.find("c.jpg"), std::optional<size_t>(2));
  EXPECT_EQ(r.find("nope.jpg"), std::nullopt);
  EXPECT_EQ(r.row(1)[0], 3.f);
  EXPECT_EQ(r.row(2)[1], 6.f);
}

TEST(Features, RejectsNonFeatureTensors) {
  ScratchDir dir;
  const std::string path = dir.path("f.safetensors");
  Tensor ok{{3}, {1, 2, 3}}, two_d{{1, 3}, {1, 2, 3}}, shorter{{2}, {1, 2}}, empty{{0}, {}};
  write_safetensors(path, {{"a.jpg", &ok}, {"b.jpg", &two_d}});
  EXPECT_TRUE(throws_input_error([&] { read_features(path); }, {"f.safetensors", "'b.jpg'", "1-D"}));
  write_safetensors(path, {{"a.jpg", &ok}, {"b.jpg", &shorter}});
  EXPECT_TRUE(throws_input_error([&] { read_features(path); }, {"f.safetensors", "'b.jpg'", "expected 3"}));
  write_safetensors(path, {{"a.jpg", &empty}});
  EXPECT_TRUE(throws_input_error([&] { read_features(path); }, {"'a.jpg'"}));
  write_safetensors(path, {});
  EXPECT_TRUE(throws_input_error([&] { read_features(path); }, {"f.safetensors", "no feature"}));
  FeatureTable wrong{{"a.jpg", "b.jpg"}, 2, {1, 2, 3}};
  EXPECT_TRUE(throws_input_error([&] { write_features(dir.path("w.safetensors"), wrong); }, {"w.safetensors"}));
  FeatureTable dup{{"a.jpg", "a.jpg"}, 1, {1, 2}};
  EXPECT_TRUE(throws_input_error([&] { write_features(dir.path("w.safetensors"), dup); }, {"duplicate", "'a.jpg'"}));
}

TEST(Features, Flickr8kReferenceFeatures) {
  const std::string path = test::shared_data("flickr8k/features_resnet50c4.safetensors");
  if (path.empty()) GTEST_SKIP() << "no shared features file";
  auto t0 = std::chrono::steady_clock::now();
  FeatureTable t = read_features(path);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ Features ] read %zu x %d F16 features in %.0f ms\n", t.images.size(), t.dim, ms);
  // One row per image beside it: all 8091 in ../shared, the slice that scripts/gpu-carry.sh
  // carries to the GPU machine there.
  std::vector<std::string> images;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_data("flickr8k/images")))
    images.push_back(e.path().filename().string());
  std::vector<std::string> listed = t.images;
  std::sort(images.begin(), images.end());
  std::sort(listed.begin(), listed.end());
  EXPECT_TRUE(listed == images) << listed.size() << " features, " << images.size() << " images";
  EXPECT_EQ(t.dim, 1024);
  ASSERT_EQ(t.data.size(), t.images.size() * 1024u);
  EXPECT_EQ(t.find(t.images.back()), std::optional<size_t>(t.images.size() - 1));
  EXPECT_FALSE(t.find("2258277193_586949ec62.jpg.1").has_value());  // caption-file quirk, no image
  double sum = 0;
  for (float x : t.data) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
  }
  EXPECT_GT(sum, 0);  // post-ReLU averages: non-negative, not all zero
}

}  // namespace
}  // namespace caption
