#include "model/model_config.h"

#include "model/encoder_config.h"

#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;
using test::throws_input_error;

TEST(ModelConfig, DefaultsForOptionalKeys) {
  ScratchDir dir;
  test::write_bytes(dir.path("config.json"), R"({"format": "caption-model/1", "decoder": {"feature_dim": 1024}})");
  ModelConfig c = load_model_config(dir.path("config.json"));
  EXPECT_EQ(c.format, "caption-model/1");
  EXPECT_EQ(c.decoder.feature_dim, 1024);
  EXPECT_EQ(c.decoder.embed_dim, 50);
  EXPECT_EQ(c.decoder.hidden_dim, 256);
  EXPECT_EQ(c.decoder.max_len, 40);
  EXPECT_FLOAT_EQ(c.decoder.dropout, 0.3f);
  EXPECT_EQ(c.decoder.vocab, "vocab.txt");
  EXPECT_EQ(c.decoder.weights, "decoder.safetensors");
}

TEST(ModelConfig, ErrorsNameTheKey) {
  ScratchDir dir;
  const std::string path = dir.path("config.json");
  auto bad = [&](const std::string& text, std::vector<std::string> words) {
    test::write_bytes(path, text);
    words.push_back("config.json");
    return throws_input_error([&] { load_model_config(path); }, words);
  };
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"embed_dim": 50}})", {"decoder.feature_dim", "missing"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": "1024"}})", {"decoder.feature_dim"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 0}})", {"decoder.feature_dim"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "hidden_dim": 2.5}})",
                  {"decoder.hidden_dim"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "embed_dim": 99999999999}})",
                  {"decoder.embed_dim"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "max_len": 1}})", {"decoder.max_len"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "dropout": 1.5}})", {"decoder.dropout"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "vocab": 3}})", {"decoder.vocab"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": {"feature_dim": 8, "weights": ""}})", {"decoder.weights"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/2", "decoder": {"feature_dim": 8}})", {"format", "caption-model/2"}));
  EXPECT_TRUE(bad(R"({"decoder": {"feature_dim": 8}})", {"format", "missing"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1"})", {"decoder", "missing"}));
  EXPECT_TRUE(bad(R"({"format": "caption-model/1", "decoder": []})", {"decoder"}));
  EXPECT_TRUE(bad(R"([1])", {"object"}));
  EXPECT_TRUE(bad(R"({"format": )", {"JSON"}));
  EXPECT_TRUE(throws_input_error([&] { load_model_config(dir.path("none.json")); }, {"none.json"}));
}

TEST(ModelConfig, SaveKeepsUnknownKeys) {
  ScratchDir dir;
  const std::string path = dir.path("config.json");
  test::write_bytes(path, R"({"format": "caption-model/1", "encoder": {"name": "resnet50-c4", "dim": 1024},
                              "decoder": {"feature_dim": 1024, "hidden_dim": 128, "future": true}, "note": "x"})");
  ModelConfig c = load_model_config(path);
  EXPECT_EQ(c.decoder.hidden_dim, 128);
  c.decoder.hidden_dim = 512;
  c.decoder.dropout = 0.25f;
  save_model_config(path, c);
  const std::string text = test::read_bytes(path);
  EXPECT_NE(text.find("\n  \"decoder\""), std::string::npos) << text;  // pretty-printed
  EXPECT_NE(text.find("\"dropout\": 0.25"), std::string::npos) << text;
  ModelConfig d = load_model_config(path);
  EXPECT_EQ(d.decoder.hidden_dim, 512);
  EXPECT_EQ(d.decoder.feature_dim, 1024);
  EXPECT_FLOAT_EQ(d.decoder.dropout, 0.25f);
  EXPECT_EQ(d.raw.at("encoder").at("name"), "resnet50-c4");
  EXPECT_EQ(d.raw.at("note"), "x");
  EXPECT_EQ(d.raw.at("decoder").at("future"), true);

  // A config built in code (empty raw) writes every field; 0.3f is written as 0.3.
  ModelConfig fresh;
  fresh.decoder.feature_dim = 2048;
  save_model_config(path, fresh);
  EXPECT_NE(test::read_bytes(path).find("\"dropout\": 0.3,"), std::string::npos) << test::read_bytes(path);
  ModelConfig e = load_model_config(path);
  EXPECT_EQ(e.decoder.feature_dim, 2048);
  EXPECT_EQ(e.decoder.max_len, 40);
}

// The encoder object's fields: integers must be integers in range (not 224.9, not 2^32 + 5,
// which a plain conversion would read as 224 and 5), bn_eps a positive number a float holds.
TEST(EncoderConfig, ErrorsNameTheKey) {
  auto bad = [](const std::string& fields, const std::string& key) {
    const auto j = nlohmann::json::parse("{\"weights\": \"e.safetensors\"" + fields + "}");
    return throws_input_error([&] { parse_encoder_config(j, "m/config.json"); }, {"m/config.json", key});
  };
  EXPECT_TRUE(bad(R"(, "stages": 4294967301)", "encoder.stages"));
  EXPECT_TRUE(bad(R"(, "stages": 4.5)", "encoder.stages"));
  EXPECT_TRUE(bad(R"(, "stages": 3)", "encoder.stages"));
  EXPECT_TRUE(bad(R"(, "image_size": 224.9)", "encoder.image_size"));
  EXPECT_TRUE(bad(R"(, "image_size": 8192)", "encoder.image_size"));
  EXPECT_TRUE(bad(R"(, "bn_eps": 1e300)", "encoder.bn_eps"));
  EXPECT_TRUE(bad(R"(, "bn_eps": 0)", "encoder.bn_eps"));
  EXPECT_TRUE(bad(R"(, "bn_eps": "small")", "encoder.bn_eps"));
  EXPECT_TRUE(bad(R"(, "arch": "vgg16")", "encoder.arch"));
  const auto c = parse_encoder_config(nlohmann::json::parse(R"({"stages": 5, "image_size": 256, "bn_eps": 1e-3})"), "c");
  EXPECT_EQ(c.stages, 5);
  EXPECT_EQ(c.image_size, 256);
  EXPECT_FLOAT_EQ(c.bn_eps, 1e-3f);
}

}  // namespace
}  // namespace caption
