// Keras ResNet50 .h5 import: torchvision names and shapes, HWIO -> OIHW, the conv bias folded
// into running_mean, stages, both Keras file layouts, one-line errors, and `caption import-keras`.
// The files (real ResNet50 shapes up to conv4, ~35 MB) are written at test time by
// tests/golden/make_keras_h5.py, whose docstring gives the values checked here.
#include "model/keras_import.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "model/encoder_config.h"
#include "model/safetensors.h"
#include "tests/cli_test_util.h"
#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::throws_input_error;

const test::ScratchDir& scratch() {
  static test::ScratchDir dir;  // removed at exit
  return dir;
}

int shell(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Writes scratch()/name with the generator (once per name); "" when this machine has no
// /usr/bin/python3 with h5py and numpy.
std::string make_h5(const std::string& name, const std::string& args) {
  static std::map<std::string, std::string> made;
  if (auto it = made.find(name); it != made.end()) return it->second;
  const std::string path = scratch().path(name);
  const std::string script = std::string(CAPTION_TEST_DATA) + "/../golden/make_keras_h5.py";
  int rc = shell("/usr/bin/python3 " + script + " --out " + path + " " + args + " 2>&1");
  if (rc != 0 && rc != 3 && rc != 127) ADD_FAILURE() << "make_keras_h5.py " << args << " exited with " << rc;
  return made[name] = rc == 0 ? path : "";
}

#define MAKE_H5_OR_SKIP(var, name, args)                                          \
  if (!CAPTION_HAS_HDF5) GTEST_SKIP() << "built without HDF5";                    \
  const std::string var = make_h5(name, args);                                    \
  if (var.empty()) GTEST_SKIP() << "needs /usr/bin/python3 with h5py and numpy to write the test file"

// X[c] of the generator for conv{stage}_block{block}_{k} (the stem: stage = block = k = 0).
float x_of(int stage, int block, int k, int c) { return float((100 * stage + 10 * block + k) * 4096 + c); }

const Tensor& at(const KerasImport& imp, const std::string& name) {
  auto it = imp.tensors.find(name);
  if (it == imp.tensors.end()) throw std::runtime_error("no tensor " + name);
  return it->second;
}

#if !CAPTION_HAS_HDF5
TEST(KerasImport, BuildWithoutHdf5SaysSo) {
  EXPECT_TRUE(throws_input_error([] { import_keras_resnet50("w.h5"); }, {"w.h5", "no HDF5 support"}));
}
#endif

TEST(KerasImport, NamesShapesAndStages) {
  MAKE_H5_OR_SKIP(path, "c4.h5", "--stages 4");
  KerasImport imp = import_keras_resnet50(path);
  EXPECT_EQ(imp.stages, 4);
  // 43 convolutions (stem, 3 + 4 + 6 blocks of 3, three shortcuts), each with its batch norm.
  EXPECT_EQ(imp.tensors.size(), 43u * 5);
  const std::pair<const char*, std::vector<int64_t>> shapes[] = {
      {"conv1.weight", {64, 3, 7, 7}},
      {"bn1.running_var", {64}},
      {"layer1.0.downsample.0.weight", {256, 64, 1, 1}},
      {"layer1.0.downsample.1.bias", {256}},
      {"layer1.2.conv1.weight", {64, 256, 1, 1}},
      {"layer2.0.conv2.weight", {128, 128, 3, 3}},
      {"layer2.3.bn3.weight", {512}},
      {"layer3.0.downsample.0.weight", {1024, 512, 1, 1}},
      {"layer3.5.conv3.weight", {1024, 256, 1, 1}},
  };
  for (const auto& [name, shape] : shapes) EXPECT_EQ(at(imp, name).shape, shape) << name;
  for (const auto& [name, t] : imp.tensors) {
    EXPECT_EQ(name.rfind("layer4.", 0), std::string::npos) << name;
    EXPECT_EQ(int64_t(t.data.size()), t.numel()) << name;
  }
}

TEST(KerasImport, KernelsBecomeOIHW) {
  MAKE_H5_OR_SKIP(path, "c4.h5", "--stages 4");
  KerasImport imp = import_keras_resnet50(path);
  // The generator stores each kernel element's flat HWIO index as its value.
  auto check = [&](const std::string& name) {
    const Tensor& w = at(imp, name);
    const int64_t O = w.shape[0], I = w.shape[1], H = w.shape[2], W = w.shape[3];
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t x = 0; x < W; ++x)
            ASSERT_EQ(w.data[((o * I + i) * H + h) * W + x], float(((h * W + x) * I + i) * O + o))
                << name << " [" << o << "," << i << "," << h << "," << x << "]";
  };
  check("conv1.weight");
  check("layer2.0.conv2.weight");
  check("layer3.0.downsample.0.weight");
}

TEST(KerasImport, BatchNormAndFoldedBias) {
  MAKE_H5_OR_SKIP(path, "c4.h5", "--stages 4");
  KerasImport imp = import_keras_resnet50(path);
  struct Bn {
    const char* torch;
    int stage, block, k;
  };
  for (const Bn& b : {Bn{"bn1", 0, 0, 0}, Bn{"layer1.0.downsample.1", 2, 1, 0}, Bn{"layer2.3.bn1", 3, 4, 1},
                      Bn{"layer3.5.bn2", 4, 6, 2}, Bn{"layer3.5.bn3", 4, 6, 3}}) {
    const std::string n = b.torch;
    const Tensor &g = at(imp, n + ".weight"), &beta = at(imp, n + ".bias"), &m = at(imp, n + ".running_mean"),
                 &v = at(imp, n + ".running_var");
    for (int c = 0; c < int(g.numel()); ++c) {
      const float x = x_of(b.stage, b.block, b.k, c);
      ASSERT_EQ(g.data[c], x + 0.25f) << n << " " << c;
      ASSERT_EQ(beta.data[c], -x) << n << " " << c;
      ASSERT_EQ(m.data[c], x + 0.5f) << n << " " << c;  // moving_mean (2x + 0.5) minus the conv bias (x)
      ASSERT_EQ(v.data[c], x + 0.75f) << n << " " << c;
    }
  }
}

TEST(KerasImport, ModelSaveLayoutGivesTheSameTensors) {
  MAKE_H5_OR_SKIP(plain, "c4.h5", "--stages 4");
  const std::string nested = make_h5("c4_model.h5", "--stages 4 --model-save");
  ASSERT_FALSE(nested.empty());
  KerasImport a = import_keras_resnet50(plain), b = import_keras_resnet50(nested);
  EXPECT_EQ(b.stages, 4);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_EQ(t.shape, b.tensors.at(name).shape) << name;
    EXPECT_EQ(t.data, b.tensors.at(name).data) << name;
  }
}

TEST(KerasImport, BadFilesAreOneLineInputErrors) {
  MAKE_H5_OR_SKIP(dropped, "dropped.h5", "--stages 2 --drop conv2_block2_3_bn/moving_variance");
  // The importer reads in network order, so these small files (up to conv2) fail at the planted
  // problem before reaching the missing conv3.
  auto import = [](const std::string& p) { return [p] { import_keras_resnet50(p); }; };
  EXPECT_TRUE(throws_input_error(import(dropped), {dropped, "missing dataset conv2_block2_3_bn/moving_variance"}));
  const std::string reshaped = make_h5("reshaped.h5", "--stages 2 --reshape conv2_block1_2_conv/kernel");
  EXPECT_TRUE(throws_input_error(import(reshaped), {reshaped, "conv2_block1_2_conv/conv2_block1_2_conv/kernel:0",
                                                    "[3,3,64,64]", "[3,3,64,65]"}));
  const std::string c3 = make_h5("c3.h5", "--stages 3");
  EXPECT_TRUE(throws_input_error(import(c3), {c3, "missing layer conv4_block1_0_conv"}));
  // Any conv5 layer means conv5 must be complete.
  const std::string part5 = make_h5("part5.h5", "--stages 4 --extra conv5_block1_1");
  EXPECT_TRUE(throws_input_error(import(part5), {part5, "missing layer conv5_block1_0_conv"}));

  const std::string text = scratch().path("weights.h5");
  test::write_bytes(text, "not hdf5 at all\n");
  EXPECT_TRUE(throws_input_error(import(text), {text, "not an HDF5 file"}));
  const std::string plain = scratch().path("plain.h5");
  ASSERT_EQ(shell("/usr/bin/python3 -c \"import h5py; h5py.File('" + plain + "', 'w').create_group('x')\""), 0);
  EXPECT_TRUE(throws_input_error(import(plain), {plain, "layer_names"}));
  EXPECT_TRUE(throws_input_error(import(scratch().path("gone.h5")), {scratch().path("gone.h5"), "no such file"}));
}

TEST(KerasImport, CliWritesEncoderAndConfig) {
  MAKE_H5_OR_SKIP(path, "c4.h5", "--stages 4");
  const std::string out = scratch().path("model");
  std::filesystem::create_directories(out);
  // An existing config.json (here a decoder's) keeps its other keys.
  test::write_bytes(out + "/config.json", R"({"format": "caption-model/1", "decoder": {"feature_dim": 1024}})");
  const std::string cli = std::string(CAPTION_BINARY) + " import-keras ";
  ASSERT_EQ(shell(cli + path + " --out " + out + " > /dev/null"), 0);

  SafetensorsFile st = read_safetensors(out + "/encoder.safetensors");
  EXPECT_EQ(st.tensors.size(), 43u * 5);
  EXPECT_EQ(st.tensors.at("layer3.5.bn2.running_mean").data[7], x_of(4, 6, 2, 7) + 0.5f);
  EXPECT_EQ(st.tensors.at("conv1.weight").shape, (std::vector<int64_t>{64, 3, 7, 7}));

  auto cfg = nlohmann::json::parse(test::read_bytes(out + "/config.json"));
  EXPECT_EQ(cfg["format"], "caption-model/1");
  EXPECT_EQ(cfg["decoder"]["feature_dim"], 1024);
  EncoderConfig enc = parse_encoder_config(cfg["encoder"], out + "/config.json");
  EXPECT_EQ(enc.stages, 4);
  EXPECT_TRUE(enc.stride_in_1x1);
  EXPECT_FLOAT_EQ(enc.bn_eps, 1.001e-5f);
  EXPECT_EQ(enc.preprocess, Normalization::Caffe);
  EXPECT_EQ(enc.resize, ResizeMode::Squash);
  EXPECT_EQ(enc.image_size, 224);
  EXPECT_EQ(enc.weights, "encoder.safetensors");

  // A bad file: exit status 1 and a one-line error naming it.
  const std::string bad = scratch().path("bad.h5");
  test::write_bytes(bad, "nope");
  auto [st_bad, msg] = test::run_cli("import-keras " + bad + " --out " + out);
  EXPECT_EQ(st_bad, 1);
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 1) << msg;
}

}  // namespace
}  // namespace caption
