// Caption metrics: BLEU against NLTK, ROUGE-L and CIDEr-D against hand arithmetic from the
// coco-caption definitions, and `caption eval` end to end.
#include "model/caption_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tests/cli_test_util.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

Tokens words(const std::string& s) {
  Tokens out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

TEST(CaptionMetrics, BleuMatchesNltk) {
  auto golden = nlohmann::json::parse(test::read_bytes(std::string(CAPTION_TEST_DATA) + "/golden/bleu_small.json"));
  ASSERT_EQ(golden["cases"].size(), 3u);
  for (const auto& c : golden["cases"]) {
    auto cands = c["candidates"].get<std::vector<Tokens>>();
    auto refs = c["references"].get<std::vector<std::vector<Tokens>>>();
    auto bleu = corpus_bleu(cands, refs);
    for (int n = 0; n < 4; ++n)
      EXPECT_NEAR(bleu[n], c["bleu"][n].get<double>(), 1e-6) << c["name"] << " BLEU-" << n + 1;
  }
}

TEST(CaptionMetrics, PerfectCandidatesGiveBleuOne) {
  // Each candidate equals one of its references; the others are longer and shorter, so the
  // closest length is the candidate's own and there is no brevity penalty.
  std::vector<Tokens> cands = {words("a dog runs on the grass"), words("a man rides a red bike")};
  std::vector<std::vector<Tokens>> refs = {
      {words("dog"), words("a dog runs on the grass"), words("the brown dog runs on the green grass today")},
      {words("a man rides a red bike"), words("man on a bike")}};
  for (double b : corpus_bleu(cands, refs)) EXPECT_NEAR(b, 1.0, 1e-12);
}

TEST(CaptionMetrics, BleuBrevityPenaltyAndMissingOrders) {
  // Candidate "a b" against "a b c d": p1 = 2/2, p2 = 1/1, c = 2 < r = 4 so BP = exp(1 - 4/2)
  // = e^-1; BLEU-1 = BLEU-2 = e^-1. No trigrams at all: BLEU-3 = BLEU-4 = 0.
  auto bleu = corpus_bleu({words("a b")}, {{words("a b c d")}});
  EXPECT_NEAR(bleu[0], std::exp(-1.0), 1e-12);
  EXPECT_NEAR(bleu[1], std::exp(-1.0), 1e-12);
  EXPECT_EQ(bleu[2], 0.0);
  EXPECT_EQ(bleu[3], 0.0);
  // Clipping: "the the the" against "the cat": 1 of 3 unigrams counts, r is 2 (closest) < c.
  EXPECT_NEAR(corpus_bleu({words("the the the")}, {{words("the cat")}})[0], 1.0 / 3, 1e-12);
}

TEST(CaptionMetrics, RougeLByHand) {
  // "a b c d" vs "a b": LCS 2, P = 2/4, R = 2/2. vs "a b c x y z w v": LCS 3, P = 3/4, R = 3/8.
  // coco-caption takes P = max(1/2, 3/4) = 3/4 and R = max(1, 3/8) = 1 separately:
  // (1 + 1.44) * 0.75 * 1 / (1 + 1.44 * 0.75) = 1.83 / 2.08. (The best single reference's F
  // would be 1.22 / 1.72 = 0.709.)
  EXPECT_NEAR(rouge_l(words("a b c d"), {words("a b"), words("a b c x y z w v")}), 1.83 / 2.08, 1e-12);
  // "a b c d e" vs "a c e": LCS 3, P = 3/5, R = 1: 2.44 * 0.6 / (1 + 1.44 * 0.6) = 1.464 / 1.864.
  EXPECT_NEAR(rouge_l(words("a b c d e"), {words("a c e")}), 1.464 / 1.864, 1e-12);
  EXPECT_NEAR(rouge_l(words("x y"), {words("x y")}), 1.0, 1e-12);
  EXPECT_EQ(rouge_l(words("x y"), {words("a b")}), 0.0);
  EXPECT_EQ(rouge_l({}, {words("a b")}), 0.0);
}

// Two images with one reference each, "a b c d" and "e f g h": every reference n-gram occurs
// in one image of two, and a candidate n-gram in no reference has df 0 -> max(1, 0) = 1, so
// every weight is tf * w with w = log 2 - log 1 = log 2; w cancels in the cosines.
const std::vector<std::vector<Tokens>> kTwoRefs = {{words("a b c d")}, {words("e f g h")}};

TEST(CaptionMetrics, CiderDIdenticalCandidatesGiveTen) {
  // Identical candidate and reference: cosine 1 for n = 1..4, same length (penalty 1):
  // 10 * (1 + 1 + 1 + 1) / 4 = 10.
  auto s = cider_d({words("a b c d"), words("e f g h")}, kTwoRefs);
  EXPECT_NEAR(s[0], 10.0, 1e-12);
  EXPECT_NEAR(s[1], 10.0, 1e-12);
}

TEST(CaptionMetrics, CiderDPartialMatchByHand) {
  // Image 2, "e f x" vs "e f g h": unigrams e,f,x (norm sqrt3 w) vs e,f,g,h (norm 2w), dot 2w^2
  // -> 1/sqrt3; bigrams "e f","f x" vs "e f","f g","g h": dot w^2 -> 1/(sqrt2 sqrt3) = 1/sqrt6;
  // the trigram "e f x" matches nothing -> 0; no 4-gram (norm 0) -> 0. Lengths 3 and 4:
  // penalty exp(-1 / 72). CIDEr-D = 10 * exp(-1/72) * (1/sqrt3 + 1/sqrt6) / 4.
  auto s = cider_d({words("a b c d"), words("e f x")}, kTwoRefs);
  EXPECT_NEAR(s[0], 10.0, 1e-12);
  EXPECT_NEAR(s[1], 10 * std::exp(-1.0 / 72) * (1 / std::sqrt(3.0) + 1 / std::sqrt(6.0)) / 4, 1e-12);
  // The mean over images is what score_captions reports.
  EXPECT_NEAR(score_captions({words("a b c d"), words("e f x")}, kTwoRefs).cider_d, (s[0] + s[1]) / 2, 1e-12);
}

TEST(CaptionMetrics, CiderDClipsCandidateCounts) {
  // "a a b c" vs "a b c d": unigram weights a 2w, b w, c w (norm sqrt6 w) vs w each (norm 2w);
  // dot min(2w, w) w + w^2 + w^2 = 3w^2 -> 3 / (2 sqrt6) (4 / (2 sqrt6) unclipped). Bigrams
  // "a a","a b","b c" vs "a b","b c","c d": 2/3. Trigrams "a a b","a b c" vs "a b c","b c d":
  // 1/2. 4-grams differ: 0. Same length. 10 * (3/(2 sqrt6) + 2/3 + 1/2) / 4.
  auto s = cider_d({words("a a b c"), words("e f g h")}, kTwoRefs);
  EXPECT_NEAR(s[0], 10 * (3 / (2 * std::sqrt(6.0)) + 2.0 / 3 + 0.5) / 4, 1e-12);
}

TEST(CaptionMetrics, CiderDIdfFromReferenceSets) {
  // References "a b c d" and "a x y z": "a" is in both images' sets, so its idf is
  // log 2 - log 2 = 0; the rest have w = log 2. Candidate "a b" for image 1: unigrams a 0, b w
  // (norm w) vs a 0, b,c,d w (norm sqrt3 w): 1/sqrt3. Bigram "a b" (w) vs "a b","b c","c d"
  // (norm sqrt3 w): 1/sqrt3. No trigrams or 4-grams: 0. Lengths 2 and 4: exp(-4/72).
  // 10 * exp(-1/18) * (2/sqrt3) / 4 = 5/sqrt3 * exp(-1/18).
  auto s = cider_d({words("a b"), words("a x y z")}, {{words("a b c d")}, {words("a x y z")}});
  EXPECT_NEAR(s[0], 5 / std::sqrt(3.0) * std::exp(-1.0 / 18), 1e-12);
}

TEST(CaptionMetrics, CiderDAveragesOverReferences) {
  // Image 1 has references "a b c d" (identical: 10) and "e f g h" (nothing shared: 0); its
  // reference set holds all 8 unigrams, image 2's ("x y z w") none of them, so w = log 2 for all.
  auto s = cider_d({words("a b c d"), words("x y z w")}, {{words("a b c d"), words("e f g h")}, {words("x y z w")}});
  EXPECT_NEAR(s[0], 5.0, 1e-12);
  EXPECT_NEAR(s[1], 10.0, 1e-12);
}

TEST(CaptionMetrics, RejectsMismatchedInputs) {
  EXPECT_THROW(score_captions({words("a")}, {}), std::invalid_argument);
  EXPECT_THROW(score_captions({words("a")}, {{}}), std::invalid_argument);
  EXPECT_THROW(score_captions({}, {}), std::invalid_argument);
}

// ---- caption eval end to end ----

using test::CliRun;
using test::expect_one_line_error;
using test::run_cli;


class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_bytes(dir.path("refs.txt"),
                      "img0.jpg#0\tA dog runs on the grass .\n"
                      "img0.jpg#1\tThe dog is running .\n"
                      "img1.jpg#0\tA man rides a red bike .\n"
                      "img2.jpg#0\tTwo kids play in the park .\n");
  }
  std::string eval(const std::string& results, const std::string& extra = "") const {
    return "eval --results " + dir.path(results) + " --references " + dir.path("refs.txt") + extra;
  }
  test::ScratchDir dir;
};

TEST_F(EvalCli, ScoresJsonlAndCsvAlike) {
  // Cleaning (case, punctuation) makes img0 and img1 perfect; img2's caption is partial.
  test::write_bytes(dir.path("r.jsonl"),
                    "{\"image\":\"img0.jpg\",\"caption\":\"a DOG runs on the grass!\"}\n"
                    "{\"image\":\"img1.jpg\",\"caption\":\"a man rides a red bike\"}\n"
                    "{\"image\":\"img2.jpg\",\"caption\":\"two kids play outside\"}\n");
  test::write_bytes(dir.path("r.csv"),
                    "image,caption\n\"img0.jpg\",\"a DOG runs on the grass!\"\n\"img1.jpg\",\"a man rides a red bike\"\n"
                    "\"img2.jpg\",\"two kids play outside\"\n");
  CliRun r = run_cli(eval("r.jsonl"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  std::vector<Tokens> cands = {words("a dog runs on the grass"), words("a man rides a red bike"),
                               words("two kids play outside")};
  std::vector<std::vector<Tokens>> refs = {{words("a dog runs on the grass"), words("the dog is running")},
                                           {words("a man rides a red bike")},
                                           {words("two kids play in the park")}};
  CaptionScores s = score_captions(cands, refs);
  EXPECT_EQ(j["images"], 3);
  for (int n = 0; n < 4; ++n) EXPECT_NEAR(j["BLEU-" + std::to_string(n + 1)].get<double>(), s.bleu[n], 1e-12);
  EXPECT_NEAR(j["ROUGE-L"].get<double>(), s.rouge_l, 1e-12);
  EXPECT_NEAR(j["CIDEr-D"].get<double>(), s.cider_d, 1e-12);
  EXPECT_GT(s.bleu[3], 0.0);
  EXPECT_LT(s.bleu[3], 1.0);
  CliRun c = run_cli(eval("r.csv"));
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_EQ(c.output, r.output);
}

TEST_F(EvalCli, ImagesListRestrictsTheCorpus) {
  // Only img1, captioned perfectly: every metric is perfect (CIDEr-D: a single image has
  // idf log 1 - log 1 = 0 everywhere, so it is 0 by definition; not checked here).
  test::write_bytes(dir.path("r.jsonl"),
                    "{\"image\":\"img0.jpg\",\"caption\":\"a cat\"}\n"
                    "{\"image\":\"img1.jpg\",\"caption\":\"a man rides a red bike\"}\n");
  test::write_bytes(dir.path("list.txt"), "img1.jpg\n");
  CliRun r = run_cli(eval("r.jsonl", " --images " + dir.path("list.txt")));
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["images"], 1);
  EXPECT_NEAR(j["BLEU-4"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["ROUGE-L"].get<double>(), 1.0, 1e-12);
  test::write_bytes(dir.path("list2.txt"), "img2.jpg\n");
  expect_one_line_error(run_cli(eval("r.jsonl", " --images " + dir.path("list2.txt"))), "img2.jpg");
}

TEST_F(EvalCli, BadResultsGiveOneLineErrors) {
  test::write_bytes(dir.path("bad.jsonl"), "{\"image\":\"img0.jpg\",\"caption\":\"a dog\"}\n{\"image\": oops\n");
  expect_one_line_error(run_cli(eval("bad.jsonl")), "bad.jsonl: line 2");
  test::write_bytes(dir.path("nokey.jsonl"), "{\"image\":\"img0.jpg\"}\n");
  expect_one_line_error(run_cli(eval("nokey.jsonl")), "nokey.jsonl: line 1");
  test::write_bytes(dir.path("empty.jsonl"), "\n");
  expect_one_line_error(run_cli(eval("empty.jsonl")), "empty.jsonl");
  test::write_bytes(dir.path("unref.jsonl"),
                    "{\"image\":\"img0.jpg\",\"caption\":\"a dog\"}\n{\"image\":\"img9.jpg\",\"caption\":\"a dog\"}\n");
  expect_one_line_error(run_cli(eval("unref.jsonl")), "img9.jpg");
  test::write_bytes(dir.path("dup.jsonl"),
                    "{\"image\":\"img0.jpg\",\"caption\":\"a dog\"}\n{\"image\":\"img0.jpg\",\"caption\":\"a cat\"}\n");
  expect_one_line_error(run_cli(eval("dup.jsonl")), "img0.jpg");
}

}  // namespace
}  // namespace caption
