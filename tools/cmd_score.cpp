// caption score: mean token cross-entropy of a model on reference captions (no dropout).
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/caption_dataset.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/model_loader.h"

namespace caption::cli {

Command add_score(CLI::App& app) {
  auto* sub = app.add_subcommand("score", "Mean token cross-entropy and perplexity of a model on captions");
  struct Args {
    std::string model, captions, images;
    std::vector<std::string> features;
    DeviceOptions device;
    int batch = 64;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "model directory")->required();
  sub->add_option("--features", a->features,
                  "image features (.safetensors, one 1-D tensor per image; several files, such as the shards of "
                  "`caption features --shard`, are read as one)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--captions", a->captions, "reference captions (Flickr8k token file or Kaggle CSV)")->required()->check(CLI::ExistingFile);
  sub->add_option("--images", a->images, "only the captions of these images (one name per line)")->check(CLI::ExistingFile);
  sub->add_option("--batch", a->batch, "captions per batch")->capture_default_str();
  add_device_options(sub, a->device);
  return {sub, [a] {
            auto model = load_model(a->model, a->device.parse(), a->device.memory_limit_bytes());
            FeatureTable features = read_features(a->features);
            check_features(features, features_label(a->features), model);
            auto records = read_captions(a->captions);
            std::vector<std::string> images;
            if (!a->images.empty()) images = read_image_list(a->images);
            CaptionDataset data =
                build_dataset(records, images, features, model.files.vocab, model.files.config.decoder.max_len);
            const LossSum total = evaluate(*model.decoder, data, features, std::max(1, a->batch));
            double loss = total.count ? total.sum / total.count : NAN;
            nlohmann::ordered_json out = {{"loss", loss},
                                  {"perplexity", std::exp(loss)},
                                  {"tokens", total.count},
                                  {"captions", data.tokens.size()}};
            std::cout << out.dump() << std::endl;
            return total.count ? 0 : 1;
          }};
}

}  // namespace caption::cli
