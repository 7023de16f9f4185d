#include "model/captions.h"

#include <set>

#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;

std::vector<CaptionRecord> read_text(const ScratchDir& dir, const std::string& text) {
  test::write_bytes(dir.path("caps.txt"), text);
  return read_captions(dir.path("caps.txt"));
}

TEST(Captions, FlickrTokenFile) {
  ScratchDir dir;
  auto r = read_text(dir,
                     "1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\r\n"
                     "\n"
                     "1000268201_693b08cb0e.jpg#1\tA girl , going into a building .\n"
                     "2258277193_586949ec62.jpg.1#0\tpeople waiting for the subway\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].image, "1000268201_693b08cb0e.jpg");
  EXPECT_EQ(r[0].text, "A child in a pink dress .");
  EXPECT_EQ(r[1].text, "A girl , going into a building .");
  EXPECT_EQ(r[2].image, "2258277193_586949ec62.jpg.1");
}

TEST(Captions, FlickrMalformedLinesGiveLineNumbers) {
  ScratchDir dir;
  auto bad = [&](const std::string& text, std::vector<std::string> words) {
    words.push_back("caps.txt");
    return throws_input_error([&] { read_text(dir, text); }, words);
  };
  EXPECT_TRUE(bad("a.jpg#0\tok\n\na.jpg#1 no tab here\n", {"line 3", "tab"}));
  EXPECT_TRUE(bad("a.jpg\tno number\n", {"line 1", "#"}));
  EXPECT_TRUE(bad("a.jpg#0\tfine\n#1\tno image\n", {"line 2", "image"}));
  EXPECT_TRUE(bad("a.jpg#0\t  \n", {"line 1", "empty caption"}));
  EXPECT_TRUE(throws_input_error([&] { read_captions(dir.path("absent.txt")); }, {"absent.txt"}));
}

TEST(Captions, KaggleCsvWithQuotesAndCommas) {
  ScratchDir dir;
  auto r = read_text(dir,
                     "\xEF\xBB\xBFimage,caption\r\n"
                     "a.jpg,A dog runs .\r\n"
                     "a.jpg,\"A dog , a cat , and a \"\"ball\"\" .\"\n"
                     "\n"
                     "b.jpg,Unquoted, with commas .\n"
                     "\"c,d.jpg\",x\n");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].image, "a.jpg");
  EXPECT_EQ(r[0].text, "A dog runs .");
  EXPECT_EQ(r[1].text, "A dog , a cat , and a \"ball\" .");
  EXPECT_EQ(r[2].image, "b.jpg");
  EXPECT_EQ(r[2].text, "Unquoted, with commas .");
  EXPECT_EQ(r[3].image, "c,d.jpg");
}

// `caption describe --format csv` on images writes a path column between image and caption.
TEST(Captions, DescribeCsvWithPaths) {
  ScratchDir dir;
  auto r = read_text(dir, "image,path,caption\n\"a.jpg\",\"photos/x, y/a.jpg\",\"a dog , running\"\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].image, "a.jpg");
  EXPECT_EQ(r[0].text, "a dog , running");
  EXPECT_TRUE(throws_input_error([&] { read_text(dir, "image,path,caption\na.jpg,a dog\n"); },
                                 {"caps.txt", "line 2", "image,path,caption"}));
}

TEST(Captions, KaggleCsvMalformed) {
  ScratchDir dir;
  auto bad = [&](const std::string& text, std::vector<std::string> words) {
    words.push_back("caps.txt");
    return throws_input_error([&] { read_text(dir, text); }, words);
  };
  EXPECT_TRUE(bad("image,caption\na.jpg,ok\na.jpg,\"never closed\n", {"line 3", "unterminated"}));
  EXPECT_TRUE(bad("image,caption\na.jpg,\"x\" y\n", {"line 2", "closing quote"}));
  EXPECT_TRUE(bad("image,caption\nno comma here\n", {"line 2", "image,caption"}));
  EXPECT_TRUE(bad("image,caption\na.jpg,\"\"\n", {"line 2", "empty caption"}));
  EXPECT_TRUE(bad("image,caption\n,caption\n", {"line 2", "empty image"}));
}

TEST(Captions, ImageList) {
  ScratchDir dir;
  test::write_bytes(dir.path("list.txt"), "  a.jpg \r\n\n\tb.jpg\nc.jpg");
  EXPECT_EQ(read_image_list(dir.path("list.txt")), (std::vector<std::string>{"a.jpg", "b.jpg", "c.jpg"}));
  test::write_bytes(dir.path("empty.txt"), "");
  EXPECT_TRUE(read_image_list(dir.path("empty.txt")).empty());
}

TEST(Captions, Flickr8kTokenFile) {
  const std::string tokens = test::shared_data("flickr8k/text/Flickr8k.token.txt");
  if (tokens.empty()) GTEST_SKIP() << "no shared Flickr8k data";
  auto r = read_captions(tokens);
  ASSERT_EQ(r.size(), 40460u);
  std::set<std::string> images;
  for (const auto& c : r) images.insert(c.image);
  EXPECT_EQ(images.size(), 8092u);  // 8091 images plus the quirk key below
  EXPECT_EQ(images.count("2258277193_586949ec62.jpg.1"), 1u);
  EXPECT_EQ(r[0].image, "1000268201_693b08cb0e.jpg");
  EXPECT_EQ(r[0].text, "A child in a pink dress is climbing up a set of stairs in an entry way .");
  for (const char* split : {"train", "dev", "test"}) {
    auto list = read_image_list(test::shared_data(std::string("flickr8k/text/Flickr_8k.") + split + "Images.txt"));
    EXPECT_EQ(list.size(), split == std::string("train") ? 6000u : 1000u) << split;
    for (const auto& name : list) EXPECT_EQ(images.count(name), 1u) << name;
  }
}

}  // namespace
}  // namespace caption
