// caption import-keras: Keras ResNet50 weights (.h5) to an encoder in a model directory.
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/atomic_file.h"
#include "model/encoder_config.h"
#include "model/keras_import.h"
#include "model/model_dir.h"
#include "model/read_file.h"
#include "model/safetensors.h"
#include "runtime/error.h"
#include "tools/commands.h"

namespace caption::cli {

Command add_import_keras(CLI::App& app) {
  auto* sub = app.add_subcommand("import-keras", "Convert Keras ResNet50 weights (.h5) to a caption encoder");
  struct Args {
    std::string h5, out;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("FILE", a->h5, "Keras weights, e.g. resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--out", a->out, "model directory to write encoder.safetensors and config.json into")->required();
  return {sub, [a] {
            KerasImport imp = import_keras_resnet50(a->h5);
            std::filesystem::create_directories(a->out);
            EncoderConfig enc;  // Keras ResNet50: Caffe-style blocks and preprocessing, squashed inputs
            enc.stages = imp.stages;
            enc.stride_in_1x1 = true;
            enc.bn_eps = 1.001e-5f;
            enc.preprocess = Normalization::Caffe;
            enc.resize = ResizeMode::Squash;
            enc.image_size = 224;
            std::vector<std::pair<std::string, const Tensor*>> list;
            for (const auto& [name, t] : imp.tensors) list.emplace_back(name, &t);
            const std::string dir = std::filesystem::path(a->out).string();
            write_safetensors(join_path(dir, enc.weights), list,
                              {{"source", std::filesystem::path(a->h5).filename().string()}});

            // An existing config.json (a trained decoder's) keeps its other keys.
            const std::string cfg_path = join_path(dir, "config.json");
            nlohmann::json cfg = nlohmann::json::object();
            if (std::filesystem::exists(cfg_path)) {
              try {
                cfg = nlohmann::json::parse(read_file(cfg_path));
              } catch (const nlohmann::json::exception& e) {  // also out-of-range numbers
                throw InputError(cfg_path, std::string("not valid JSON: ") + e.what());
              }
              if (!cfg.is_object()) throw InputError(cfg_path, "expected a JSON object");
            }
            cfg["format"] = "caption-model/1";
            cfg["encoder"] = encoder_config_json(enc);
            write_file_atomic(cfg_path, cfg.dump(2) + "\n");
            nlohmann::ordered_json summary = {{"tensors", imp.tensors.size()}, {"stages", imp.stages}, {"out", a->out}};
            std::cout << summary.dump() << std::endl;
            return 0;
          }};
}

}  // namespace caption::cli
