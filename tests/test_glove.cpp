#include "model/glove.h"

#include <cmath>

#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;

TEST(Glove, ReadsVectors) {
  ScratchDir dir;
  test::write_bytes(dir.path("g.txt"), "the 0.418 0.24968 -0.41242\n\ndog -1e-3 2 3.5E2\r\n, 0 0 0");
  GloveVectors g = read_glove(dir.path("g.txt"));
  EXPECT_EQ(g.dim, 3);
  ASSERT_EQ(g.vectors.size(), 3u);
  EXPECT_EQ(g.vectors.at("the"), (std::vector<float>{0.418f, 0.24968f, -0.41242f}));
  EXPECT_EQ(g.vectors.at("dog"), (std::vector<float>{-1e-3f, 2.f, 350.f}));
  EXPECT_EQ(g.vectors.at(","), (std::vector<float>{0, 0, 0}));
}

TEST(Glove, MalformedLinesGiveLineNumbers) {
  ScratchDir dir;
  const std::string path = dir.path("g.txt");
  auto bad = [&](const std::string& text, std::vector<std::string> words) {
    test::write_bytes(path, text);
    words.push_back("g.txt");
    return throws_input_error([&] { read_glove(path); }, words);
  };
  EXPECT_TRUE(bad("a 1 2 3\nb 1 2\n", {"line 2", "'b'", "expected 3"}));
  EXPECT_TRUE(bad("a 1 2 3\nb 1 2 3 4\n", {"line 2", "expected 3"}));
  EXPECT_TRUE(bad("a 1 2 3\n\nb 1 2x 3\n", {"line 3", "'2x'"}));
  EXPECT_TRUE(bad("a 1 nan 3\n", {"line 1", "'nan'"}));
  EXPECT_TRUE(bad("a 1 1e99 3\n", {"line 1", "'1e99'"}));
  EXPECT_TRUE(bad("a 1 - 3\n", {"line 1", "'-'"}));
  EXPECT_TRUE(bad("a 1 2\nb 3 4\na 5 6\n", {"line 3", "'a'", "line 1"}));
  EXPECT_TRUE(bad("lonely\n", {"line 1", "no vector"}));
  EXPECT_TRUE(bad("\n\n", {"no word vectors"}));
  EXPECT_TRUE(throws_input_error([&] { read_glove(dir.path("none.txt")); }, {"none.txt"}));
}

TEST(Glove, Flickr8kSubset) {
  const std::string path = test::shared_data("glove/glove.6B.50d.flickr8k.txt");
  if (path.empty()) GTEST_SKIP() << "no shared GloVe data";
  GloveVectors g = read_glove(path);
  EXPECT_EQ(g.dim, 50);
  EXPECT_EQ(g.vectors.size(), 1841u);
  ASSERT_TRUE(g.vectors.count("child"));
  EXPECT_FLOAT_EQ(g.vectors.at("child")[0], 0.30459f);
  EXPECT_TRUE(g.vectors.count("dog"));
}

}  // namespace
}  // namespace caption
