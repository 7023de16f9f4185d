#include "model/vocabulary.h"

#include <cstdio>
#include <set>

#include "model/captions.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;
using Words = std::vector<std::string>;

TEST(Vocabulary, CleanCaption) {
  EXPECT_EQ(clean_caption("A dog's 2 BALLS,red-ish ."), (Words{"a", "dog", "s", "balls", "red", "ish"}));
  EXPECT_EQ(clean_caption("  caf\xc3\xa9\tau\nlait "), (Words{"caf", "au", "lait"}));
  EXPECT_EQ(clean_caption("123 ... !"), Words{});
  EXPECT_EQ(clean_caption(""), Words{});
}

TEST(Vocabulary, BuildOrdersByCountThenAlphabet) {
  std::vector<Words> caps = {{"dog", "runs", "b"}, {"dog", "a", "cat"}, {"cat", "dog", "zebra"}, {"a", "<pad>", ""}};
  Vocabulary v = Vocabulary::build(caps, 2);
  ASSERT_EQ(v.size(), 4 + 3);
  EXPECT_EQ(v.word(Vocabulary::kPad), "<pad>");
  EXPECT_EQ(v.word(Vocabulary::kStart), "<start>");
  EXPECT_EQ(v.word(Vocabulary::kEnd), "<end>");
  EXPECT_EQ(v.word(Vocabulary::kUnk), "<unk>");
  EXPECT_EQ(v.word(4), "dog");  // 3
  EXPECT_EQ(v.word(5), "a");    // 2, before "cat" alphabetically
  EXPECT_EQ(v.word(6), "cat");
  EXPECT_EQ(v.id("cat"), 6);
  EXPECT_EQ(v.id("zebra"), Vocabulary::kUnk);  // below min_count
  EXPECT_EQ(v.id("<pad>"), Vocabulary::kPad);
  EXPECT_EQ(Vocabulary::build(caps, 1).size(), 4 + 6);
  EXPECT_THROW(v.word(7), std::out_of_range);
  EXPECT_THROW(v.word(-1), std::out_of_range);
}

TEST(Vocabulary, EncodeTruncatesAtMaxLen) {
  Vocabulary v = Vocabulary::build({{"a", "b", "c", "d", "e", "f"}}, 1);
  const int a = v.id("a"), b = v.id("b"), c = v.id("c");
  const int S = Vocabulary::kStart, E = Vocabulary::kEnd, U = Vocabulary::kUnk;
  EXPECT_EQ(v.encode({"a", "b", "c", "d", "e", "f"}, 5), (std::vector<int32_t>{S, a, b, c, E}));
  EXPECT_EQ(v.encode({"a", "nope"}, 40), (std::vector<int32_t>{S, a, U, E}));
  EXPECT_EQ(v.encode({"a", "b", "c"}, 5), (std::vector<int32_t>{S, a, b, c, E}));  // exactly fits
  EXPECT_EQ(v.encode({"a"}, 2), (std::vector<int32_t>{S, E}));
  EXPECT_EQ(v.encode({}, 3), (std::vector<int32_t>{S, E}));
  EXPECT_THROW(v.encode({"a"}, 1), std::invalid_argument);
}

TEST(Vocabulary, SaveLoadRoundTrip) {
  ScratchDir dir;
  Vocabulary v = Vocabulary::build({{"x", "y", "y"}}, 1);
  v.save(dir.path("vocab.txt"));
  EXPECT_EQ(test::read_bytes(dir.path("vocab.txt")), "<pad>\n<start>\n<end>\n<unk>\ny\nx\n");
  Vocabulary w = Vocabulary::load(dir.path("vocab.txt"));
  ASSERT_EQ(w.size(), v.size());
  for (int32_t i = 0; i < v.size(); ++i) EXPECT_EQ(w.word(i), v.word(i));
  EXPECT_EQ(w.id("x"), 5);
}

TEST(Vocabulary, LoadRejectsBadFiles) {
  ScratchDir dir;
  const std::string path = dir.path("v.txt");
  auto check = [&](const std::string& text, std::vector<std::string> words) {
    test::write_bytes(path, text);
    words.push_back("v.txt");
    return throws_input_error([&] { Vocabulary::load(path); }, words);
  };
  const std::string specials = "<pad>\n<start>\n<end>\n<unk>\n";
  EXPECT_TRUE(check(specials + "dog\ncat\ndog\n", {"line 7", "duplicate", "'dog'", "line 5"}));
  EXPECT_TRUE(check(specials + "dog\n\ncat\n", {"line 6", "empty"}));
  EXPECT_TRUE(check(specials + "hot dog\n", {"line 5", "whitespace"}));
  EXPECT_TRUE(check("<pad>\n<end>\n<start>\n<unk>\n", {"line 2", "<start>"}));
  EXPECT_TRUE(check("<pad>\n<start>\n", {"4 special"}));
  EXPECT_TRUE(check("", {"4 special"}));
  EXPECT_TRUE(throws_input_error([&] { Vocabulary::load(dir.path("none.txt")); }, {"none.txt"}));
  // CRLF files are fine.
  test::write_bytes(path, "<pad>\r\n<start>\r\n<end>\r\n<unk>\r\ndog\r\n");
  EXPECT_EQ(Vocabulary::load(path).id("dog"), 4);
}

TEST(Vocabulary, Flickr8kTrainVocabularySize) {
  const std::string tokens = test::shared_data("flickr8k/text/Flickr8k.token.txt");
  const std::string train = test::shared_data("flickr8k/text/Flickr_8k.trainImages.txt");
  if (tokens.empty() || train.empty()) GTEST_SKIP() << "no shared Flickr8k data";
  const auto names = read_image_list(train);
  const std::set<std::string> train_set(names.begin(), names.end());
  std::vector<Words> caps;
  for (const auto& r : read_captions(tokens))
    if (train_set.count(r.image)) caps.push_back(clean_caption(r.text));
  EXPECT_EQ(caps.size(), 30000u);
  Vocabulary v = Vocabulary::build(caps, 10);
  std::printf("[ Vocabulary ] Flickr8k train, min_count 10: %d tokens\n", v.size());
  EXPECT_GE(v.size(), 1600);
  EXPECT_LE(v.size(), 1720);
  EXPECT_EQ(v.word(4), "a");  // by far the most frequent word
  EXPECT_NE(v.id("dog"), Vocabulary::kUnk);
}

}  // namespace
}  // namespace caption
