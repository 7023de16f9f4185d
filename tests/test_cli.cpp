// The `caption` binary end to end on a tiny synthetic data set: train, resume, score,
// describe, and one-line errors for bad input.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "kernels/vec_math.h"
#include "model/features.h"
#include "model/safetensors.h"
#include "runtime/device.h"
#include "tests/cli_test_util.h"
#include "tests/io_test_util.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::CliRun;
using test::expect_one_line_error;
CliRun run(const std::string& args) { return test::run_cli(args); }

// A failed train run: its error is the last line (train reports its data set before it starts).
std::string last_line_of_failed(const CliRun& r) {
  EXPECT_NE(r.status, 0);
  return r.output.substr(r.output.rfind('\n', r.output.size() - 2) + 1);
}

::testing::AssertionResult same_files(const std::string& a, const std::string& b) {
  return test::same_bytes(test::read_bytes(a), test::read_bytes(b));
}

// 12 images whose 8-d features say which of three subjects they show; captions follow.
class CliData {
 public:
  explicit CliData(int copies = 2) {
    const char* subjects[3] = {"dog runs on grass", "man rides a bike", "girl swims in the pool"};
    FeatureTable f;
    f.dim = 8;
    std::string captions, train, val;
    for (int i = 0; i < 12; ++i) {
      std::string name = "img" + std::to_string(i) + ".jpg";
      f.images.push_back(name);
      auto v = test::random_vector(8, i, -0.1f, 0.1f);
      v[i % 3] += 1.f;
      f.data.insert(f.data.end(), v.begin(), v.end());
      for (int k = 0; k < copies; ++k) captions += name + "#" + std::to_string(k) + "\tA " + subjects[i % 3] + " .\n";
      (i < 9 ? train : val) += name + "\n";
    }
    f.reindex();
    write_features(dir.path("features.safetensors"), f);
    test::write_bytes(dir.path("captions.txt"), captions);
    test::write_bytes(dir.path("train.txt"), train);
    test::write_bytes(dir.path("val.txt"), val);
  }
  std::string train_args(const std::string& out, int epochs, const std::string& lr = "0.01", int batch = 4) const {
    return "train --captions " + dir.path("captions.txt") + " --features " + dir.path("features.safetensors") +
           " --train-list " + dir.path("train.txt") + " --val-list " + dir.path("val.txt") +
           " --min-count 1 --batch " + std::to_string(batch) + " --lr " + lr + " --seed 5 --device cpu --epochs " + std::to_string(epochs) +
           " --out " + dir.path(out);
  }
  test::ScratchDir dir;
};

TEST(Cli, TrainWritesModelMetricsAndCheckpoint) {
  CliData d;
  CliRun r = run(d.train_args("m", 3));
  ASSERT_EQ(r.status, 0) << r.output;
  for (auto f : {"config.json", "vocab.txt", "decoder.safetensors", "checkpoint.safetensors", "metrics.jsonl", "loss.png"})
    EXPECT_TRUE(std::filesystem::exists(d.dir.path("m/") + f)) << f;
  // A whole PNG: the signature, then chunks up to IEND and nothing after it.
  const std::string png = test::read_bytes(d.dir.path("m/loss.png"));
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  ASSERT_GE(png.size(), 20u);
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
  std::ifstream metrics(d.dir.path("m/metrics.jsonl"));
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(metrics, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_LT(lines[2]["train_loss"].get<double>(), lines[0]["train_loss"].get<double>());
  for (auto& l : lines)
    for (auto key : {"epoch", "train_loss", "val_loss", "tokens_per_s", "seconds"}) EXPECT_TRUE(l.contains(key)) << key;
  auto weights = read_safetensors(d.dir.path("m/decoder.safetensors"));
  EXPECT_EQ(weights.tensors.at("img_fc.weight").shape, (std::vector<int64_t>{256, 8}));
  EXPECT_EQ(weights.tensors.size(), 11u);
}

TEST(Cli, ResumeContinuesBitExactly) {
  CliData d;
  ASSERT_EQ(run(d.train_args("full", 3)).status, 0);
  ASSERT_EQ(run(d.train_args("part", 1)).status, 0);
  CliRun r = run(d.train_args("part", 3) + " --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming after epoch 1"), std::string::npos) << r.output;
  EXPECT_TRUE(same_files(d.dir.path("full/checkpoint.safetensors"), d.dir.path("part/checkpoint.safetensors")));
  EXPECT_TRUE(same_files(d.dir.path("full/decoder.safetensors"), d.dir.path("part/decoder.safetensors")));
  auto losses = [&](const std::string& m) {
    std::ifstream in(d.dir.path(m + "/metrics.jsonl"));
    std::vector<double> out;
    for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l)["train_loss"]);
    return out;
  };
  EXPECT_EQ(losses("full"), losses("part"));
}

TEST(Cli, SurvivesSigkillMidEpochAndResumesBitExactly) {
  CliData d(300);  // epochs long enough (~0.5 s) for the kill to land inside one
  ASSERT_EQ(run(d.train_args("full", 3)).status, 0);
  const std::string ckpt = d.dir.path("killed/checkpoint.safetensors");
  // The kill lands in epoch 2: 300 ms after epoch 1's checkpoint appeared.
  std::chrono::steady_clock::time_point saved{};
  ASSERT_TRUE(test::kill_cli_when(d.train_args("killed", 3), [&] {
    if (saved == std::chrono::steady_clock::time_point{} && std::filesystem::exists(ckpt))
      saved = std::chrono::steady_clock::now();
    return saved != std::chrono::steady_clock::time_point{} &&
           std::chrono::steady_clock::now() - saved > std::chrono::milliseconds(300);
  })) << "the run ended before the kill: make the epochs longer";
  ASSERT_TRUE(std::filesystem::exists(ckpt)) << "no checkpoint after epoch 1";
  CliRun r = run(d.train_args("killed", 3) + " --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(same_files(d.dir.path("full/checkpoint.safetensors"), ckpt));
  EXPECT_TRUE(same_files(d.dir.path("full/decoder.safetensors"), d.dir.path("killed/decoder.safetensors")));
  auto losses = [&](const std::string& m) {
    std::ifstream in(d.dir.path(m + "/metrics.jsonl"));
    std::vector<std::pair<double, double>> out;
    for (std::string l; std::getline(in, l);) {
      auto j = nlohmann::json::parse(l);
      out.emplace_back(j["train_loss"], j["val_loss"]);
    }
    return out;
  };
  EXPECT_EQ(losses("full"), losses("killed"));
}

// An epoch's model files and metrics line are written before its checkpoint, so a run stopped
// in between resumes from the checkpoint before and writes them again: the checkpoint is never
// ahead of them. Here the checkpoint cannot be written (a folder is in its place); then a run
// stopped after epoch 2's metrics line but before its checkpoint (epoch 1's put back) resumes
// with epoch 2 again and ends with one line per epoch, the losses of an uninterrupted run.
TEST(Cli, CheckpointIsWrittenAfterTheModelFilesAndMetrics) {
  CliData d;
  std::filesystem::create_directories(d.dir.path("m/checkpoint.safetensors"));
  const CliRun r = run(d.train_args("m", 2));
  EXPECT_NE(last_line_of_failed(r).find("checkpoint.safetensors: cannot replace file"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(d.dir.path("m/decoder.safetensors")));
  EXPECT_EQ(test::lines(test::read_bytes(d.dir.path("m/metrics.jsonl"))).size(), 1u);

  auto losses = [&](const std::string& m) {
    std::vector<std::tuple<int, double, double>> out;
    for (const auto& l : test::lines(test::read_bytes(d.dir.path(m + "/metrics.jsonl")))) {
      const auto j = nlohmann::json::parse(l);
      out.emplace_back(j["epoch"], j["train_loss"], j["val_loss"]);
    }
    return out;
  };
  ASSERT_EQ(run(d.train_args("full", 2)).status, 0);
  ASSERT_EQ(run(d.train_args("s", 1)).status, 0);
  const std::string epoch1 = test::read_bytes(d.dir.path("s/checkpoint.safetensors"));
  ASSERT_EQ(run(d.train_args("s", 2) + " --resume").status, 0);
  test::write_bytes(d.dir.path("s/checkpoint.safetensors"), epoch1);
  const CliRun again = run(d.train_args("s", 2) + " --resume");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("resuming after epoch 1"), std::string::npos) << again.output;
  EXPECT_EQ(losses("s"), losses("full"));
}

// Checkpoint metadata that is not a number of its kind is refused, naming the file and the key.
TEST(Cli, ResumeRefusesMalformedCheckpointMetadata) {
  CliData d;
  ASSERT_EQ(run(d.train_args("m", 1)).status, 0);
  const std::string ckpt = d.dir.path("m/checkpoint.safetensors");
  const auto good = read_safetensors(ckpt);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"epoch", "-1"}, {"epoch", "1x"}, {"step", "-3"}, {"seed", ""}, {"best_val_loss", "low"}}) {
    SCOPED_TRACE(key + "=" + value);
    auto meta = good.metadata;
    meta[key] = value;
    std::vector<std::pair<std::string, const Tensor*>> tensors;
    for (const auto& [name, t] : good.tensors) tensors.emplace_back(name, &t);
    write_safetensors(ckpt, tensors, meta);
    const CliRun r = run(d.train_args("m", 2) + " --resume");
    EXPECT_NE(last_line_of_failed(r).find("checkpoint.safetensors: checkpoint metadata '" + key + "'"), std::string::npos)
        << r.output;
  }
}

TEST(Cli, ScoreAndDescribe) {
  CliData d;
  ASSERT_EQ(run(d.train_args("m", 20)).status, 0);
  std::string model = " --model " + d.dir.path("m") + " --device cpu";
  CliRun s = run("score" + model + " --features " + d.dir.path("features.safetensors") + " --captions " +
              d.dir.path("captions.txt") + " --images " + d.dir.path("val.txt"));
  ASSERT_EQ(s.status, 0) << s.output;
  auto j = nlohmann::json::parse(s.output);
  EXPECT_EQ(j["captions"], 6);
  EXPECT_GT(j["tokens"].get<int>(), 6 * 4);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(j["loss"].get<double>()), 1e-9);

  for (int beam : {1, 3}) {
    CliRun r = run("describe" + model + " --features " + d.dir.path("features.safetensors") + " --beam " +
                std::to_string(beam) + " --output " + d.dir.path("out.jsonl"));
    ASSERT_EQ(r.status, 0) << r.output;
    std::ifstream in(d.dir.path("out.jsonl"));
    int i = 0;
    for (std::string l; std::getline(in, l); ++i) {
      EXPECT_EQ(l.rfind("{\"image\":", 0), 0u) << l;  // key order of the contract
      auto line = nlohmann::json::parse(l);
      EXPECT_EQ(line["image"], "img" + std::to_string(i) + ".jpg");
      // The features say which subject: a trained model names it.
      const char* word[3] = {"dog", "bike", "pool"};
      EXPECT_NE(line["caption"].get<std::string>().find(word[i % 3]), std::string::npos) << l << " beam " << beam;
    }
    EXPECT_EQ(i, 12);
  }
}

// The shards of one features set, given together, are the set: train, score and describe give
// the same bits as from the whole file. Shards of two dimensions, or an image in two shards,
// are a one-line error naming the shard.
TEST(Cli, ShardedFeaturesReadAsOne) {
  CliData d;
  const FeatureTable all = read_features(d.dir.path("features.safetensors"));
  auto shard = [&](const std::string& name, size_t first, size_t count, int dim) {
    FeatureTable t;
    t.dim = dim;
    for (size_t i = first; i < first + count; ++i) {
      t.images.push_back(all.images[i]);
      t.data.insert(t.data.end(), all.row(i), all.row(i) + dim);
    }
    write_features(d.dir.path(name), t);
    return " " + d.dir.path(name);
  };
  const std::string whole = " " + d.dir.path("features.safetensors");
  const std::string parts = shard("a.safetensors", 0, 5, 8) + shard("b.safetensors", 5, 7, 8);
  auto train = [&](const std::string& out, const std::string& features) {
    std::string args = d.train_args(out, 2);
    args.replace(args.find(whole), whole.size(), features);
    return run(args);
  };
  ASSERT_EQ(train("whole", whole).status, 0);
  CliRun r = train("parts", parts);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(same_files(d.dir.path("whole/decoder.safetensors"), d.dir.path("parts/decoder.safetensors")));
  const std::string model = " --model " + d.dir.path("whole") + " --device cpu";
  for (const std::string cmd : {"score" + model + " --captions " + d.dir.path("captions.txt") + " --features",
                                "describe" + model + " --beam 2 --features"}) {
    const CliRun a = run(cmd + whole), b = run(cmd + parts);
    ASSERT_EQ(a.status, 0) << a.output;
    EXPECT_EQ(a.output, b.output) << cmd;
  }
  test::expect_one_line_error(run("score" + model + " --captions " + d.dir.path("captions.txt") + " --features" +
                                  parts + shard("c.safetensors", 11, 1, 8)),
                              "c.safetensors: image 'img11.jpg' is in an earlier features file too");
  test::expect_one_line_error(run("describe" + model + " --features" + parts + shard("d.safetensors", 0, 1, 4)),
                              "d.safetensors: features are 4-d");
}

TEST(Cli, NonFiniteLossStopsAndKeepsTheCheckpoint) {
  CliData d;
  ASSERT_EQ(run(d.train_args("m", 1)).status, 0);
  const std::string before = test::read_bytes(d.dir.path("m/checkpoint.safetensors"));
  CliRun r = run(d.train_args("m", 2, "1e30") + " --resume");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("non-finite"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint of epoch 1 is kept"), std::string::npos) << r.output;
  EXPECT_TRUE(test::same_bytes(test::read_bytes(d.dir.path("m/checkpoint.safetensors")), before));
}

// Under a memory limit too small for the batch, train stops before the first step with a
// one-line error naming a batch size that fits, and that size does train.
TEST(Cli, TrainNamesABatchSizeThatFitsTheMemoryLimit) {
  CliData d(8);  // 96 training captions
  int refused = 0;
  for (int mib = 6; mib <= 16 && refused == 0; ++mib) {
    const std::string args = d.train_args("m", 1, "0.01", 96) + " --memory-limit " + std::to_string(mib);
    CliRun r = run(args);
    if (r.status == 0) break;
    const size_t at = r.output.find("--batch ");
    if (at == std::string::npos) continue;  // the model alone does not fit yet
    const std::string last = last_line_of_failed(r);
    EXPECT_NE(last.find("error: out of cpu memory"), std::string::npos) << r.output;
    EXPECT_NE(last.find("--memory-limit " + std::to_string(mib) + " MiB"), std::string::npos) << r.output;
    const int fits = std::stoi(r.output.substr(at + 8));
    ASSERT_GT(fits, 0);
    ASSERT_LT(fits, 96);
    CliRun ok = run(d.train_args("m", 1, "0.01", fits) + " --memory-limit " + std::to_string(mib));
    EXPECT_EQ(ok.status, 0) << ok.output;
    ++refused;
  }
  EXPECT_EQ(refused, 1) << "no limit between 6 and 16 MiB refused batch 96";
}

// train --cuda-graphs on CUDA: the same losses as plain launches, up to the summation order that
// its padded output rows may change (the CPU ignores the flag).
TEST(Cli, CudaGraphTrainingMatchesPlainLaunches) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  CliData d;
  auto on_cuda = [](std::string args) { return args.replace(args.find("--device cpu"), 12, "--device cuda"); };
  ASSERT_EQ(run(on_cuda(d.train_args("plain", 3))).status, 0);
  CliRun r = run(on_cuda(d.train_args("graphs", 3)) + " --cuda-graphs");
  ASSERT_EQ(r.status, 0) << r.output;
  auto losses = [&](const std::string& m) {
    std::ifstream in(d.dir.path(m + "/metrics.jsonl"));
    std::vector<double> out;
    for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l)["train_loss"]);
    return out;
  };
  const auto plain = losses("plain"), graphs = losses("graphs");
  ASSERT_EQ(plain.size(), 3u);
  ASSERT_EQ(graphs.size(), 3u);
  for (size_t e = 0; e < plain.size(); ++e) EXPECT_NEAR(graphs[e], plain[e], 1e-4 * plain[e]) << "epoch " << e + 1;
}

// --encoder DIR: the trained model carries DIR's encoder and captions image files itself; an
// encoder whose dimension differs from the features is refused before training.
TEST(Cli, TrainWithEncoderMakesAnImageModel) {
  const std::string bundled = std::string(CAPTION_SOURCE_DIR) + "/models/flickr8k-resnet50c4";
  CliData small;  // 8-d features
  expect_one_line_error(run(small.train_args("m", 1) + " --encoder " + bundled), "features.safetensors");
  EXPECT_FALSE(std::filesystem::exists(small.dir.path("m/config.json")));

  test::ScratchDir dir;
  FeatureTable f;
  f.dim = 1024;
  std::string captions, names;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "p" + std::to_string(i) + ".jpg";
    f.images.push_back(name);
    auto v = test::random_vector(1024, i, 0.f, 1.f);
    f.data.insert(f.data.end(), v.begin(), v.end());
    captions += name + "#0\ta dog runs on the grass .\n";
    names += name + "\n";
  }
  f.reindex();
  write_features(dir.path("f.safetensors"), f);
  test::write_bytes(dir.path("c.txt"), captions);
  test::write_bytes(dir.path("l.txt"), names);
  CliRun r = run("train --captions " + dir.path("c.txt") + " --features " + dir.path("f.safetensors") +
                 " --train-list " + dir.path("l.txt") + " --val-list " + dir.path("l.txt") +
                 " --min-count 1 --epochs 40 --lr 0.01 --device cpu --encoder " + bundled + " --out " + dir.path("m"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(same_files(dir.path("m/encoder.safetensors"), bundled + "/encoder.safetensors"));
#if CAPTION_HAS_OPENCV
  r = run("describe --model " + dir.path("m") + " --device cpu " + CAPTION_SOURCE_DIR +
          "/examples/3385593926_d3e9c21170.jpg 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"caption\":\"a dog runs on the grass\""), std::string::npos) << r.output;
#endif
}

// --version names this build's CPU vector width and says whether CUDA and OpenCV are in it,
// and --device cuda without a device says why.
TEST(Cli, VersionDescribesTheBuild) {
  CliRun r = run("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("vector math " + std::to_string(cpu::vec::kLanes) + " lanes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(CAPTION_HAS_CUDA ? "CUDA: runtime" : "CUDA: not built"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(CAPTION_HAS_OPENCV ? "images: OpenCV" : "images: not built"), std::string::npos) << r.output;
  if (!cuda_available()) {
    CliData d;
    expect_one_line_error(run("describe --device cuda --features " + d.dir.path("features.safetensors")),
                          CAPTION_HAS_CUDA ? "no usable CUDA device: none (" : "this build has no CUDA support");
  }
}

TEST(Cli, BadInputGivesOneLineErrors) {
  CliData d;
  ASSERT_EQ(run(d.train_args("m", 1)).status, 0);
  std::string model = " --model " + d.dir.path("m") + " --device cpu";
  expect_one_line_error(run("describe --model " + d.dir.path("nope") + " --features " +
                            d.dir.path("features.safetensors")), "nope");
  // Features of the wrong dimension for the model.
  FeatureTable f;
  f.dim = 5;
  f.images = {"x.jpg"};
  f.data.assign(5, 0.f);
  f.reindex();
  write_features(d.dir.path("f5.safetensors"), f);
  expect_one_line_error(run("describe" + model + " --features " + d.dir.path("f5.safetensors")), "f5.safetensors");
  // A truncated features file.
  std::string bytes = test::read_bytes(d.dir.path("features.safetensors"));
  test::write_bytes(d.dir.path("cut.safetensors"), bytes.substr(0, bytes.size() / 2));
  expect_one_line_error(run("describe" + model + " --features " + d.dir.path("cut.safetensors")), "cut.safetensors");
  // Malformed config.json.
  test::write_bytes(d.dir.path("m/config.json"), "{\"format\": ");
  expect_one_line_error(run("describe" + model + " --features " + d.dir.path("features.safetensors")), "config.json");
  // A caption line without a tab.
  test::write_bytes(d.dir.path("captions.txt"), "img0.jpg#0 no tab here\n");
  expect_one_line_error(run(d.train_args("m2", 1)), "captions.txt");
}

}  // namespace
}  // namespace caption
