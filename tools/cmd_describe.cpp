// caption describe: captions for images, from precomputed features.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/atomic_file.h"
#include "model/captioner.h"
#include "model/captions.h"
#include "tools/commands.h"
#include "tools/model_loader.h"
#include "tools/progress.h"

namespace caption::cli {

Command add_describe(CLI::App& app) {
  auto* sub = app.add_subcommand("describe", "Caption images from their features (one JSON line per image)");
  struct Args {
    std::string model, features, images, output, device = "auto";
    DecodeOptions decode;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "model directory")->required();
  sub->add_option("--features", a->features, "image features (.safetensors)")->required()->check(CLI::ExistingFile);
  sub->add_option("--images", a->images, "only these images (one name per line), in the features file's order")
      ->check(CLI::ExistingFile);
  sub->add_option("--beam", a->decode.beam, "beam width (1: greedy)")->capture_default_str();
  sub->add_option("--length-penalty", a->decode.length_penalty,
                  "beam score = sum log p / (words+1)^alpha")->capture_default_str();
  sub->add_option("--batch", a->decode.batch, "images decoded together")->capture_default_str();
  auto* no_unk = sub->add_flag("--no-unk", "never emit <unk> (rare words)");
  sub->add_option("--output", a->output, "JSONL file to write (default: standard output)");
  sub->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  return {sub, [a, no_unk] {
            a->decode.allow_unk = !*no_unk;
            if (a->decode.beam < 1 || a->decode.batch < 1) throw std::invalid_argument("--beam and --batch must be >= 1");
            auto model = load_model(a->model, parse_device(a->device));
            FeatureTable features = read_features(a->features);
            check_features(features, a->features, model);
            if (!a->images.empty()) features = select_images(features, read_image_list(a->images), a->images);
            a->decode.max_len = model.files.config.decoder.max_len;
            Progress progress(Progress::stderr_is_terminal() && !a->output.empty());
            std::string text;
            const int n = int(features.images.size()), chunk = a->decode.batch;
            for (int first = 0; first < n; first += chunk) {
              int count = std::min(chunk, n - first);
              auto ids = generate(*model.decoder, features.row(first), count, a->decode);
              for (int i = 0; i < count; ++i) {
                nlohmann::ordered_json line = {{"image", features.images[first + i]},
                                       {"caption", caption_text(model.files.vocab, ids[i])}};
                if (a->output.empty()) std::cout << line.dump() << "\n" << std::flush;
                else text += line.dump() + "\n";
              }
              progress.update(double(first + count) / n, std::to_string(first + count) + "/" + std::to_string(n) + " images");
            }
            progress.finish_line();
            if (!a->output.empty()) write_file_atomic(a->output, text);
            return 0;
          }};
}

}  // namespace caption::cli
